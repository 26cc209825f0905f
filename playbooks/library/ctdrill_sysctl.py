#!/usr/bin/python
"""Set this host's sysctls of the run's payload through /proc/sys, reading each back.

Fenced: nothing is written unless the run still holds this host's lock and its dead-man
has not fired. Values arrive typed in the payload (base64 JSON), never templated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ansible.module_utils.basic import AnsibleModule

if TYPE_CHECKING:  # mypy sees module_utils as top-level modules (see ctdrill_env)
    from ctdrill_env import Fenced, HostError
    from ctdrill_lock import fence, host_mutex
    from ctdrill_payload import decode_payload
    from ctdrill_sysctl_ops import write_sysctl
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import Fenced, HostError
    from ansible.module_utils.ctdrill_lock import fence, host_mutex
    from ansible.module_utils.ctdrill_payload import decode_payload
    from ansible.module_utils.ctdrill_sysctl_ops import write_sysctl

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
