"""The surge spec: strict, documented, and consistent across its fields."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ctdrill.spec.loader import load_spec_text
from ctdrill.spec.models import DrillSpec
from ctdrill.surge.spec import SurgeLoad

BASE: dict[str, Any] = {"kind": "surge", "source": "client", "destination": "venue",
                        "shape": {"kind": "constant", "rate": 1000, "duration_s": 1}}


def make(**over: Any) -> SurgeLoad:
    return SurgeLoad.model_validate({**BASE, **over})


def test_defaults() -> None:
    s = make()
    assert (s.protocol, s.mode, s.src_addrs, s.teardown) == ("udp", "new", 1, True)
    assert s.src_ports == (1024, 65535) and s.workers is None


@pytest.mark.parametrize(("over", "match"), [
    ({"mode": "assured"}, "needs protocol 'tcp'"),
    ({"protocol": "icmp", "dst_ports": [1, 2]}, "icmp has no destination ports"),
    ({"src_ports": [100, 10]}, "lo <= hi"),
    ({"dst_ports": [0, 10]}, "1 <= lo"),
    ({"protocol": "tcp", "fill": {"flows": 10, "dst_ports": [10500, 11000]}}, "overlaps"),
    ({"shape": {"kind": "replay"}}, "exactly one of 'profile' or 'pcap'"),
    ({"shape": {"kind": "replay", "pcap": "a", "profile": "b"}}, "exactly one"),
    ({"shape": {"kind": "replay", "pcap": "a.pcap"}, "mode": "assured", "protocol": "tcp"},
     "use mode 'new'"),
    ({"shape": {"kind": "ramp", "from_rate": 1, "to_rate": 1e12, "duration_s": 1}}, "less"),
    ({"shape": {"kind": "burst", "rate": 1, "on_s": 1, "off_s": 1, "count": 0}}, "greater"),
    ({"shape": {"kind": "warp", "duration_s": 1}}, "does not match any of the expected tags"),
    ({"rate": 5}, "Extra inputs are not permitted"),
])
def test_invalid(over: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        make(**over)


def test_valid_combinations() -> None:
    make(protocol="tcp", mode="assured", fill={"flows": 1000, "rate": 500})
    make(protocol="icmp")
    make(protocol="udp", fill={"flows": 10, "dst_ports": [10500, 11000]})  # udp: no clash
    make(shape={"kind": "step", "steps": [{"rate": 0, "duration_s": 1}]})
    make(shape={"kind": "max", "duration_s": 2}, workers=2)


def test_a_drill_spec_takes_a_surge_load() -> None:
    spec = load_spec_text(
        "drill: surge\ntargets: {hosts: gw}\nload:\n  kind: surge\n  source: client\n"
        "  destination: venue\n  shape: {kind: ramp, from_rate: 0, to_rate: 9, duration_s: 2}\n",
        "d.yaml")
    assert isinstance(spec.load, SurgeLoad)


def test_schema_documents_every_surge_field() -> None:
    schema = DrillSpec.model_json_schema()
    surge = schema["$defs"]["SurgeLoad"]
    for name, prop in surge["properties"].items():
        if name != "kind":
            assert prop.get("description"), f"SurgeLoad.{name} has no description"
