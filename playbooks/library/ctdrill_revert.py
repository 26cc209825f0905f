#!/usr/bin/python
"""Revert this host to its snapshot, verify, and only when verified disarm and unlock.

One module for the whole sequence keeps the order on the host itself: the dead-man
switch stays armed and the lock stays held whenever the host is not provably back.
"""

import base64
import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.ctdrill_host import (
    HostError,
    compare,
    deadman_disarm,
    lock_release,
    revert,
    snapshot,
)

DOCUMENTATION = r"""
module: ctdrill_revert
short_description: Restore sysctls and delete ctdrill tables, verify, then disarm and unlock
options:
  run_id: {type: str, required: true}
  plan: {type: dict, required: true, description: sysctl originals and nft tables to delete}
  expected_b64: {type: str, required: true, description: the snapshot to verify against, as
                 base64 JSON (host-derived text is never templated by Ansible)}
"""


def main():
    module = AnsibleModule(argument_spec={"run_id": {"type": "str", "required": True},
                                          "plan": {"type": "dict", "required": True},
                                          "expected_b64": {"type": "str", "required": True}})
    p = module.params
    plan = p["plan"]
    expected = json.loads(base64.b64decode(p["expected_b64"]).decode())
    try:
        result = revert(plan)
        now = snapshot(list(plan.get("sysctl", {})))
        diffs = compare(expected, now, touched=list(plan.get("sysctl", {})))
    except HostError as exc:
        module.fail_json(msg=str(exc))
    changed = bool(result["restored"] or result["deleted"])
    if result["errors"] or diffs:
        module.fail_json(msg="revert not verified: %s" % "; ".join(result["errors"] + diffs),
                         diffs=diffs, changed=changed, **result)
    deadman = deadman_disarm(p["run_id"])
    unlocked = lock_release(p["run_id"])
    module.exit_json(changed=changed, diffs=diffs, verified=True, deadman=deadman,
                     unlocked=unlocked, **result)


if __name__ == "__main__":
    main()
