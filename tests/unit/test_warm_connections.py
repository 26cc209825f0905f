"""connect/warm.py: connectors for SSH targets only, handed over once, the rest closed.

The handshake itself is the real thing in the SSH drill tests (tests/integration/
test_opaque_hosts.py: every SSH drill's streams open over these connections); here a
target whose port refuses shows that a failed warm-up is left to the stream."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ctdrill.connect.ssh import SshConnector
from ctdrill.connect.warm import WarmConnections, warm_connections
from ctdrill.errors import EnvironmentProblem
from ctdrill.targets.target import Target


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_only_ssh_targets_get_a_connector_and_each_is_handed_over_once() -> None:
    ssh = Target("gw01", "ssh", host="127.0.0.1", port=closed_port())
    warm = WarmConnections([ssh, Target("gw02", "netns", netns="ctd-x-gw"),
                            Target("k", "local")])
    taken = warm.take("gw01")
    assert isinstance(taken, SshConnector) and taken.target == ssh
    assert warm.take("gw01") is None and warm.take("gw02") is None and warm.take("k") is None
    warm.close()


def test_a_failed_warm_up_is_left_to_the_stream_which_says_why(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    ssh = Target("gw01", "ssh", host="127.0.0.1", port=closed_port(), known_hosts=str(known))
    with warm_connections([ssh]) as warm:
        conn = warm.take("gw01")
    assert conn is not None
    with pytest.raises(EnvironmentProblem, match="gw01"):
        conn.transport()  # connects again, and raises in the connector's own words


def test_connectors_never_taken_are_closed_at_exit() -> None:
    ssh = Target("gw01", "ssh", host="127.0.0.1", port=closed_port())
    with warm_connections([ssh]) as warm:
        pass
    assert warm.take("gw01") is None
