#!/usr/bin/python
"""Revert this host to its snapshot, verify, and only when verified disarm and unlock.

One module for the whole sequence keeps the order on the host itself: the dead-man
switch stays armed and the lock stays held whenever the host is not provably back.
Fenced: a revert asked for by a run that does not hold this host's lock changes nothing
(another run's drill is live here), and reports what the dead-man did when nobody does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible.module_utils.basic import AnsibleModule

if TYPE_CHECKING:  # mypy sees module_utils as top-level modules (see ctdrill_env)
    from ctdrill_env import Fenced, HostError
    from ctdrill_fenced_revert import revert_fenced
    from ctdrill_payload import decode_payload
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import Fenced, HostError
    from ansible.module_utils.ctdrill_fenced_revert import revert_fenced
    from ansible.module_utils.ctdrill_payload import decode_payload

DOCUMENTATION = r"""
module: ctdrill_revert
short_description: Restore sysctls and delete ctdrill tables, verify, then disarm and unlock
options:
  payload: {type: str, required: true, description: the run's payload, base64 JSON, with this
            host's revert plan and the snapshot to verify against}
  host: {type: str, required: true, description: inventory_hostname, picks this host's part}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"payload": {"type": "str", "required": True},
                                          "host": {"type": "str", "required": True}})
    try:
        part = decode_payload(module.params["payload"], module.params["host"])
        verified, result = revert_fenced(part["run_id"], part["plan"], part["expected"])
    except Fenced as exc:
        module.fail_json(msg=str(exc), fenced=True, holder=exc.holder)
    except HostError as exc:
        module.fail_json(msg=str(exc))
    if not verified:
        problems = "; ".join(result["errors"] + result["diffs"])
        module.fail_json(msg=f"revert not verified: {problems}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
