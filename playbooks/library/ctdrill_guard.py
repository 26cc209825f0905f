#!/usr/bin/python
"""The per-target drill lock and the dead-man switch, both kept on the target itself."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.ctdrill_host import (
    HostError,
    deadman_arm,
    deadman_disarm,
    deadman_status,
    lock_acquire,
    lock_release,
)

DOCUMENTATION = r"""
module: ctdrill_guard
short_description: Take/release the drill lock; arm/disarm/inspect the dead-man switch
options:
  action: {type: str, required: true,
           choices: [lock, unlock, arm, disarm, status]}
  run_id: {type: str, required: true}
  owner: {type: dict, default: {}}
  plan: {type: dict, default: {}}
  ttl_s: {type: float, default: 120}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={
        "action": {"type": "str", "required": True,
                   "choices": ["lock", "unlock", "arm", "disarm", "status"]},
        "run_id": {"type": "str", "required": True},
        "owner": {"type": "dict", "default": {}},
        "plan": {"type": "dict", "default": {}},
        "ttl_s": {"type": "float", "default": 120.0},
    })
    p = module.params
    try:
        if p["action"] == "lock":
            ok, holder = lock_acquire(dict(p["owner"], run_id=p["run_id"]))
            if not ok:
                module.fail_json(msg=f"target is locked by drill run {holder.get('run_id')}",
                                 holder=holder, locked=True)
            module.exit_json(changed=True, holder=holder)
        if p["action"] == "unlock":
            module.exit_json(changed=lock_release(p["run_id"]))
        if p["action"] == "arm":
            module.exit_json(changed=True, deadman=deadman_arm(p["run_id"], p["plan"],
                                                               p["ttl_s"]))
        if p["action"] == "disarm":
            module.exit_json(changed=True, deadman=deadman_disarm(p["run_id"]))
        module.exit_json(changed=False, deadman=deadman_status(p["run_id"]))
    except HostError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
