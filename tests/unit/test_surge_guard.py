"""The destination guard: nothing leaves for an address outside the declared networks."""

from __future__ import annotations

import ipaddress

import pytest

from ctdrill.errors import InvalidInput
from ctdrill.surge.guard import check_destination, source_range

LAB = ("10.77.0.0/16", "10.78.0.0/16")


def test_inside_is_allowed() -> None:
    assert check_destination("10.78.0.2", LAB, "client") == ipaddress.IPv4Address("10.78.0.2")


@pytest.mark.parametrize(("dst", "match"), [
    ("192.0.2.1", "outside the target networks of 'client'"),
    ("8.8.8.8", "outside the target networks"),
    ("10.79.0.1", "outside the target networks"),
    ("10.78.255.255", "broadcast"),
    ("10.78.0.0", "network or broadcast"),
    ("fd00::1", "IPv6"),
    ("venue2", "neither an inventory host nor an IP"),
])
def test_outside_is_refused(dst: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        check_destination(dst, LAB, "client")


def test_no_declared_networks_means_nothing_is_allowed() -> None:
    with pytest.raises(InvalidInput, match="declares no ctdrill_target_networks"):
        check_destination("10.78.0.2", (), "client")
    with pytest.raises(InvalidInput, match="not a network"):
        check_destination("10.78.0.2", ("banana",), "client")
    with pytest.raises(InvalidInput, match="no IPv4 target network"):
        check_destination("10.78.0.2", ("fd00::/8",), "client")


def test_source_range_must_stay_inside_one_network() -> None:
    start, n = source_range("10.77.0.2", 1000, LAB, "client")
    assert (str(start), n) == ("10.77.0.2", 1000)
    with pytest.raises(InvalidInput, match="leave the target networks"):
        source_range("10.77.255.250", 10, LAB, "client")
    with pytest.raises(InvalidInput, match="leave the target networks"):
        source_range("192.0.2.1", 1, LAB, "client")
    with pytest.raises(InvalidInput, match="not an address"):
        source_range("client", 1, LAB, "client")
