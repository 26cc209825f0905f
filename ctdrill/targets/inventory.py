"""Load a standard Ansible inventory (any format ansible-playbook takes) into Targets.

Ansible's own InventoryManager parses it, so YAML, INI, group_vars and host
patterns behave exactly as they do for ansible-playbook.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ctdrill.errors import InvalidInput
from ctdrill.targets.target import Target, target_from_hostvars


class Inventory:
    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise InvalidInput(f"inventory {path} does not exist",
                               "pass the path that 'ctdrill lab up' printed, or your own")
        os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
        os.environ.setdefault("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.vars.manager import VariableManager

        self.path = path
        self._loader = DataLoader()
        self._inv = InventoryManager(loader=self._loader, sources=[str(path)])
        self._vars = VariableManager(loader=self._loader, inventory=self._inv)
        self._targets: dict[str, Target] = {}
        if not self._inv.hosts:
            raise InvalidInput(f"inventory {path} has no hosts",
                               "check its format with 'ansible-inventory -i PATH --list'")

    def hostnames(self) -> list[str]:
        return sorted(self._inv.hosts)

    def has_group(self, name: str) -> bool:
        return name in self._inv.groups

    def names(self, pattern: str) -> list[str]:
        """Names of the hosts matching a pattern, without their variables: what pools,
        change sets and guards need; Ansible's per-host variable pass (the cost of a
        large inventory) runs only for hosts that become Targets."""
        return [str(h.name) for h in self._hosts(pattern)]

    def select(self, pattern: str) -> list[Target]:
        """Targets matching an Ansible host pattern (a host, a group, 'all', 'a:b', ...)."""
        return [self._target(h) for h in self._hosts(pattern)]

    def _hosts(self, pattern: str) -> list[Any]:
        """Ansible's Host objects (untyped) matching a pattern; none is invalid input."""
        hosts = self._inv.get_hosts(pattern)
        if not hosts:
            raise InvalidInput(
                f"no host in {self.path} matches '{pattern}'",
                f"known hosts: {some_names(self.hostnames())}",
            )
        return list(hosts)

    def target(self, name: str) -> Target:
        host = self._inv.get_host(name)
        if host is None:
            raise InvalidInput(f"unknown target '{name}' in {self.path}",
                               f"known hosts: {some_names(self.hostnames())}")
        return self._target(host)

    def _target(self, host: object) -> Target:
        """One host's Target, built once per inventory (its variables do not change)."""
        name = str(getattr(host, "name", host))
        if name not in self._targets:
            self._targets[name] = self._build(host, name)
        return self._targets[name]

    def _build(self, host: object, name: str) -> Target:
        hv = self._vars.get_vars(host=host, include_hostvars=False)
        groups = tuple(sorted(g.name for g in host.get_groups()))  # type: ignore[attr-defined]
        try:
            return target_from_hostvars(name, dict(hv), groups)
        except ValueError as exc:
            raise InvalidInput(str(exc), f"fix the host's variables in {self.path}") from exc


def some_names(names: list[str], shown: int = 20) -> str:
    """A one-line host list: a fleet's 500 names would not make one line."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
