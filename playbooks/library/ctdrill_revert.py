#!/usr/bin/python
"""Revert this host to its snapshot, verify, and only when verified disarm and unlock.

One module for the whole sequence keeps the order on the host itself: the dead-man
switch stays armed and the lock stays held whenever the host is not provably back.
"""

from __future__ import annotations

import base64
import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.ctdrill_host import HostError, revert_verified

DOCUMENTATION = r"""
module: ctdrill_revert
short_description: Restore sysctls and delete ctdrill tables, verify, then disarm and unlock
options:
  run_id: {type: str, required: true}
  plan: {type: dict, required: true, description: sysctl originals and nft tables to delete}
  expected_b64: {type: str, required: true, description: the snapshot to verify against, as
                 base64 JSON (host-derived text is never templated by Ansible)}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"run_id": {"type": "str", "required": True},
                                          "plan": {"type": "dict", "required": True},
                                          "expected_b64": {"type": "str", "required": True}})
    p = module.params
    expected = json.loads(base64.b64decode(p["expected_b64"]).decode())
    try:
        verified, result = revert_verified(p["run_id"], p["plan"], expected)
    except HostError as exc:
        module.fail_json(msg=str(exc))
    if not verified:
        problems = "; ".join(result["errors"] + result["diffs"])
        module.fail_json(msg=f"revert not verified: {problems}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
