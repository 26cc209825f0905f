"""One connector layer: every host access goes through a `Connector` (base.py), one
module per transport (local, netns, ssh), chosen by `connector_for(target)`."""

from ctdrill.connect.base import Completed, Connector, Spawned
from ctdrill.connect.factory import connector_for, namespace_connector

__all__ = ["Completed", "Connector", "Spawned", "connector_for", "namespace_connector"]
