#!/usr/bin/python
"""Release the drill lock; disarm or inspect the dead-man switch, both kept on the target.

Taking the lock and arming happen inside ctdrill_prepare and ctdrill_apply (one host
task each). Everything the module needs comes in `payload` (base64 JSON, decoded
here), never as Ansible variables that Ansible would template.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ansible.module_utils.basic import AnsibleModule

if TYPE_CHECKING:  # mypy sees module_utils as top-level modules (see ctdrill_env)
    from ctdrill_deadman import deadman_disarm, deadman_status
    from ctdrill_env import HostError
    from ctdrill_lock import host_mutex, lock_release
    from ctdrill_payload import decode_payload
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_deadman import deadman_disarm, deadman_status
    from ansible.module_utils.ctdrill_env import HostError
    from ansible.module_utils.ctdrill_lock import host_mutex, lock_release
    from ansible.module_utils.ctdrill_payload import decode_payload

DOCUMENTATION = r"""
module: ctdrill_guard
short_description: Release the drill lock; disarm/inspect the dead-man switch
options:
  action: {type: str, required: true, choices: [unlock, disarm, status]}
  payload: {type: str, required: true, description: the run's payload, base64 JSON}
  host: {type: str, required: true, description: inventory_hostname, picks this host's part}
"""


def act(module: AnsibleModule, action: str, part: dict[str, Any]) -> None:
    run_id = part["run_id"]
    if action == "unlock":
        with host_mutex():
            released = lock_release(run_id)
            deadman_disarm(run_id) if released else None
        module.exit_json(changed=released)
    if action == "disarm":
        module.exit_json(changed=True, deadman=deadman_disarm(run_id))
    module.exit_json(changed=False, deadman=deadman_status(run_id))


def main() -> None:
    module = AnsibleModule(argument_spec={
        "action": {"type": "str", "required": True,
                   "choices": ["unlock", "disarm", "status"]},
        "payload": {"type": "str", "required": True},
        "host": {"type": "str", "required": True},
    })
    try:
        act(module, module.params["action"],
            decode_payload(module.params["payload"], module.params["host"]))
    except HostError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
