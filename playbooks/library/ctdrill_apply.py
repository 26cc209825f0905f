#!/usr/bin/python
"""Arm the dead-man switch, set the run's sysctls, load its ctd_* table, read back.

One module for the whole change, in that order, under one host mutex and one fence:
nothing is written unless the run still holds this host's lock and its dead-man has
not fired. Values arrive typed in the payload (base64 JSON), never templated. Each
change is reported in `applied` (one journal outcome each), also when one fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ansible.module_utils.basic import AnsibleModule

if TYPE_CHECKING:  # mypy sees module_utils as top-level modules (see ctdrill_env)
    from ctdrill_change_ops import apply_host
    from ctdrill_env import Fenced, HostError
    from ctdrill_payload import decode_payload
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_change_ops import apply_host
    from ansible.module_utils.ctdrill_env import Fenced, HostError
    from ansible.module_utils.ctdrill_payload import decode_payload

DOCUMENTATION = r"""
module: ctdrill_apply
short_description: Arm the dead-man, write sysctls with read-back, load the ctd_* table
options:
  payload: {type: str, required: true, description: the run's payload, base64 JSON (revert
            plan, expected snapshot, ttl_s, arm, sysctl, nft, and check_keys to read back)}
  host: {type: str, required: true, description: inventory_hostname, picks this host's part}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"payload": {"type": "str", "required": True},
                                          "host": {"type": "str", "required": True}})
    applied: list[dict[str, Any]] = []
    try:
        part = decode_payload(module.params["payload"], module.params["host"])
        result = apply_host(part, applied)
    except Fenced as exc:
        module.fail_json(msg=str(exc), fenced=True, holder=exc.holder, applied=applied)
    except HostError as exc:
        module.fail_json(msg=str(exc), applied=applied)
    module.exit_json(changed=any(a["changed"] for a in applied), applied=applied, **result)


if __name__ == "__main__":
    main()
