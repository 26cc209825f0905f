#!/usr/bin/python
"""The per-target drill lock and the dead-man switch, both kept on the target itself.

Everything the module needs comes in `payload` (base64 JSON, decoded here), never as
Ansible variables that Ansible would template. Arming is fenced: only the run that
holds this host's lock can arm its switch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ansible.module_utils.basic import AnsibleModule

if TYPE_CHECKING:  # mypy sees module_utils as top-level modules (see ctdrill_env)
    from ctdrill_deadman import LOCK_ONLY_PLAN, deadman_arm, deadman_disarm, deadman_status
    from ctdrill_env import Fenced, HostError
    from ctdrill_lock import fence, host_mutex, lock_acquire, lock_release
    from ctdrill_payload import decode_payload
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_deadman import (
        LOCK_ONLY_PLAN,
        deadman_arm,
        deadman_disarm,
        deadman_status,
    )
    from ansible.module_utils.ctdrill_env import Fenced, HostError
    from ansible.module_utils.ctdrill_lock import fence, host_mutex, lock_acquire, lock_release
    from ansible.module_utils.ctdrill_payload import decode_payload

DOCUMENTATION = r"""
module: ctdrill_guard
short_description: Take/release the drill lock; arm/disarm/inspect the dead-man switch
options:
  action: {type: str, required: true, choices: [lock, unlock, arm, disarm, status]}
  payload: {type: str, required: true, description: the run's payload, base64 JSON}
  host: {type: str, required: true, description: inventory_hostname, picks this host's part}
"""


def act(module: AnsibleModule, action: str, part: dict[str, Any]) -> None:
    run_id = part["run_id"]
    if action == "lock":
        ok, holder = lock_acquire(dict(part.get("owner", {}), run_id=run_id))
        if not ok:
            module.fail_json(msg=f"target is locked by drill run {holder.get('run_id')}",
                             holder=holder, locked=True)
        # a lock never outlives its run: the switch releases it at the TTL if the run
        # dies before it applies anything (apply re-arms it with the real plan)
        switch = deadman_arm(run_id, LOCK_ONLY_PLAN, float(part["ttl_s"]))
        module.exit_json(changed=True, holder=holder, deadman=switch)
    if action == "unlock":
        with host_mutex():
            released = lock_release(run_id)
            deadman_disarm(run_id) if released else None
        module.exit_json(changed=released)
    if action == "arm":
        if not part.get("arm", True):
            module.exit_json(changed=False, deadman={"armed": "already"})
        with host_mutex():
            fence(run_id)
            module.exit_json(changed=True, deadman=deadman_arm(
                run_id, part["revert"], float(part["ttl_s"]), expected=part.get("expected")))
    if action == "disarm":
        module.exit_json(changed=True, deadman=deadman_disarm(run_id))
    module.exit_json(changed=False, deadman=deadman_status(run_id))


def main() -> None:
    module = AnsibleModule(argument_spec={
        "action": {"type": "str", "required": True,
                   "choices": ["lock", "unlock", "arm", "disarm", "status"]},
        "payload": {"type": "str", "required": True},
        "host": {"type": "str", "required": True},
    })
    try:
        act(module, module.params["action"],
            decode_payload(module.params["payload"], module.params["host"]))
    except Fenced as exc:
        module.fail_json(msg=str(exc), fenced=True, holder=exc.holder)
    except HostError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
