"""Real-kernel fixtures: a lab per test module, always removed, also when a test fails."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ctdrill.lab import manager
from ctdrill.lab.manager import LabUp

pytestmark = pytest.mark.root


def unique_lab_name(tag: str) -> str:
    return f"{tag[:3]}{os.getpid() % 100000}"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabUp]:
    name = unique_lab_name("it")
    try:
        yield manager.up(name, ssh=True)
    finally:
        manager.down(name)


POOL_GATEWAYS = 4
"""The pool tiers' lab: four lanes, enough for a 25 % canary and waves of one."""


@pytest.fixture(scope="module")
def pool() -> Iterator[LabUp]:
    """A pool lab (`lab up --gateways 4`) per test module, always removed."""
    name = unique_lab_name("pool")
    try:
        yield manager.up(name, ssh=True, gateways=POOL_GATEWAYS)
    finally:
        manager.down(name)
