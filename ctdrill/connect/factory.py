"""From a Target (targets/target.py says the transport) to its connector."""

from __future__ import annotations

from ctdrill.connect.base import Connector
from ctdrill.connect.local import LocalConnector
from ctdrill.connect.netns import NetnsConnector
from ctdrill.targets.target import Target


def connector_for(target: Target) -> Connector:
    """The connector of the target's transport. paramiko loads only for an ssh target."""
    if target.transport == "ssh":
        from ctdrill.connect.ssh import SshConnector

        return SshConnector(target)
    if target.transport == "netns":
        assert target.netns is not None  # target_from_hostvars requires it
        return NetnsConnector(target.netns)
    return LocalConnector()


def namespace_connector(netns: str | None) -> Connector:
    """A namespace on this machine by name (None: the initial one), for the parts that
    work on local namespaces whatever the host's transport (surge plumbing, lab)."""
    return NetnsConnector(netns) if netns else LocalConnector()
