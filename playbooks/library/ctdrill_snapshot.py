#!/usr/bin/python
"""Read-only snapshot of what a ctdrill drill may touch on this host (its netns)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.ctdrill_host import HostError, snapshot

DOCUMENTATION = r"""
module: ctdrill_snapshot
short_description: Snapshot net.netfilter.* sysctls, extra keys and the nftables ruleset
options:
  keys: {type: list, elements: str, default: [], description: extra sysctl keys to read}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"keys": {"type": "list", "elements": "str",
                                                    "default": []}},
                           supports_check_mode=True)
    try:
        module.exit_json(changed=False, snapshot=snapshot(module.params["keys"]))
    except HostError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
