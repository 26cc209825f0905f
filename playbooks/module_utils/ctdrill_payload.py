"""Decoding the one payload a ctdrill play hands its modules."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy sees these files as top-level modules (see ctdrill_env)
    from ctdrill_env import HostError, Json
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import HostError, Json


def decode_payload(payload_b64: str, host: str) -> Json:
    """This host's part of a run's payload.

    The orchestrator sends everything a play needs as ONE base64 JSON string, never as
    Ansible variables: Ansible treats extra vars as templates, and a spec or a host
    must never be able to run code through one. Shape: {"run_id", "common": {...},
    "hosts": {HOST: {...}}}; the host's part wins over common.
    """
    try:
        data = json.loads(base64.b64decode(payload_b64.encode("ascii"), validate=True))
        part: Json = dict(data.get("common", {}))
        part.update(data.get("hosts", {}).get(host, {}))
        part["run_id"] = str(data["run_id"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HostError(f"unreadable ctdrill payload ({exc})") from exc
    return part
