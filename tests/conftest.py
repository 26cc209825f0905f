"""Shared test settings: root-only tests are marked and refused loudly in CI without root."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("CI must run the suite as root: the integration tier needs it")
    skip = pytest.mark.skip(reason="needs root (network namespaces, netfilter)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
