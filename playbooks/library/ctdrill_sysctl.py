#!/usr/bin/python
"""Set this host's sysctls of the run's payload through /proc/sys, reading each back.

Fenced: nothing is written unless the run still holds this host's lock and its dead-man
has not fired. Values arrive typed in the payload (base64 JSON), never templated.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.ctdrill_host import (
    Fenced,
    HostError,
    decode_payload,
    fence,
    host_mutex,
    write_sysctl,
)

DOCUMENTATION = r"""
module: ctdrill_sysctl
short_description: Write the run's sysctls via /proc/sys with read-back verification
options:
  payload: {type: str, required: true, description: the run's payload, base64 JSON}
  host: {type: str, required: true, description: inventory_hostname, picks this host's part}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"payload": {"type": "str", "required": True},
                                          "host": {"type": "str", "required": True}})
    applied: list[dict[str, Any]] = []
    try:
        part = decode_payload(module.params["payload"], module.params["host"])
        with host_mutex():
            fence(part["run_id"])
            for name, value in part.get("sysctl", {}).items():
                try:
                    before, after = write_sysctl(name, value)
                except HostError as exc:
                    applied.append({"name": name, "ok": False, "message": str(exc)})
                    raise
                applied.append({"name": name, "ok": True, "before": before, "after": after,
                                "changed": before != after})
    except Fenced as exc:
        module.fail_json(msg=str(exc), fenced=True, holder=exc.holder, applied=applied)
    except HostError as exc:
        module.fail_json(msg=str(exc), applied=applied)
    module.exit_json(changed=any(a["changed"] for a in applied), applied=applied)


if __name__ == "__main__":
    main()
