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
