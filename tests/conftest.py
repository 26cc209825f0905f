"""Shared test settings: root-only tests are marked and refused loudly in CI without root."""

from __future__ import annotations

import os

import pytest

# every journal record the suites make, drills in subprocesses included, must validate
# against its model: on the revert path too (ctdrill/journal/writer.py STRICT_ENV)
os.environ.setdefault("CTDRILL_JOURNAL_STRICT", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("CI must run the suite as root: the integration tier needs it")
    skip = pytest.mark.skip(reason="needs root (network namespaces, netfilter)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
