#!/usr/bin/python
"""Read-only snapshot of what a ctdrill drill may touch on this host (its netns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible.module_utils.basic import AnsibleModule

if TYPE_CHECKING:  # mypy sees module_utils as top-level modules (see ctdrill_env)
    from ctdrill_env import HostError
    from ctdrill_payload import decode_payload
    from ctdrill_snapshot_ops import snapshot
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import HostError
    from ansible.module_utils.ctdrill_payload import decode_payload
    from ansible.module_utils.ctdrill_snapshot_ops import snapshot

DOCUMENTATION = r"""
module: ctdrill_snapshot
short_description: Snapshot net.netfilter.* sysctls, extra keys and the nftables ruleset
options:
  payload: {type: str, required: true, description: the run's payload, base64 JSON; its
            `keys` are extra sysctl keys to read}
  host: {type: str, required: true, description: inventory_hostname, picks this host's part}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"payload": {"type": "str", "required": True},
                                          "host": {"type": "str", "required": True}},
                           supports_check_mode=True)
    try:
        part = decode_payload(module.params["payload"], module.params["host"])
        module.exit_json(changed=False, snapshot=snapshot([str(k) for k in part.get("keys", [])]))
    except HostError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
