#!/usr/bin/python
"""Revert this host to its snapshot from a revert plan, then verify against the snapshot."""

import base64
import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.ctdrill_host import HostError, compare, revert, snapshot

DOCUMENTATION = r"""
module: ctdrill_revert
short_description: Restore sysctls and delete ctdrill tables, then compare to the snapshot
options:
  plan: {type: dict, required: true, description: sysctl originals and nft tables to delete}
  expected_b64: {type: str, default: "", description: the snapshot to verify against, as
                 base64 JSON (host-derived text is never templated by Ansible)}
"""


def main():
    module = AnsibleModule(argument_spec={"plan": {"type": "dict", "required": True},
                                          "expected_b64": {"type": "str", "default": ""}})
    plan = module.params["plan"]
    raw = module.params["expected_b64"]
    expected = json.loads(base64.b64decode(raw).decode()) if raw else {}
    try:
        result = revert(plan)
        diffs = []
        if expected:
            now = snapshot(list(plan.get("sysctl", {})))
            diffs = compare(expected, now, touched=list(plan.get("sysctl", {})))
            result["ruleset"] = now["ruleset"]
    except HostError as exc:
        module.fail_json(msg=str(exc))
    changed = bool(result["restored"] or result["deleted"])
    if result["errors"] or diffs:
        module.fail_json(msg="revert not verified: %s" % "; ".join(result["errors"] + diffs),
                         diffs=diffs, changed=changed, **result)
    module.exit_json(changed=changed, diffs=diffs, verified=bool(expected), **result)


if __name__ == "__main__":
    main()
