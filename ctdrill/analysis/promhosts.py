"""Which host of the execution log a Prometheus series belongs to.

By default ctdrill watch's own `host` label (the inventory name), else the target's
`instance` without its port (`gw-1:9100` -> `gw-1`, `[::1]:9100` -> `::1`): the usual
way node_exporter targets are named. `--prometheus-host-label LABEL` names another label
(its value used as is, except `instance`, whose port is always stripped).
"""

from __future__ import annotations

import re

from ctdrill.errors import InvalidInput

PORT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<name>[^:]+)):\d+$")
DEFAULT_LABELS = ("host", "instance")


def strip_port(instance: str) -> str:
    """`host:port` -> host; `[v6]:port` -> v6; anything else as it is."""
    m = PORT.match(instance)
    if m is None:
        return instance
    return m.group("v6") or m.group("name")


def host_of(labels: dict[str, str], host_label: str | None, metric: str) -> str:
    """The host name of one series, or one error line naming the series."""
    names = (host_label,) if host_label else DEFAULT_LABELS
    for name in names:
        value = labels.get(name, "")
        if value:
            return strip_port(value) if name == "instance" else value
    shown = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    raise InvalidInput(f"a {metric} series has no {' or '.join(names)} label ({{{shown}}})",
                       "name the label that holds the host with --prometheus-host-label")
