"""Which hosts a class-entries expectation counted on, by one key the observation and
the judge share (a leaf, so neither imports the other)."""

from __future__ import annotations

from ctdrill.spec.models import ClassEntriesExpectation


def class_scope(e: ClassEntriesExpectation) -> str:
    """A host or group name, or `pool:canary` / `pool:control`."""
    return e.host if e.host is not None else f"pool:{e.pool}"
