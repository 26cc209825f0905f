#!/usr/bin/python
"""Take this host's drill lock (with its lock-only dead-man switch), then snapshot it.

One module for both, so a pool's prepare is one host task per host. Everything comes
in `payload` (base64 JSON, decoded here), never as Ansible variables that Ansible would
template.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible.module_utils.basic import AnsibleModule

if TYPE_CHECKING:  # mypy sees module_utils as top-level modules (see ctdrill_env)
    from ctdrill_change_ops import Locked, prepare_host
    from ctdrill_env import HostError
    from ctdrill_payload import decode_payload
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_change_ops import Locked, prepare_host
    from ansible.module_utils.ctdrill_env import HostError
    from ansible.module_utils.ctdrill_payload import decode_payload

DOCUMENTATION = r"""
module: ctdrill_prepare
short_description: Take the drill lock, arm the lock-only dead-man, snapshot the host
options:
  payload: {type: str, required: true, description: the run's payload, base64 JSON (owner,
            ttl_s, and `keys`, extra sysctl keys to read)}
  host: {type: str, required: true, description: inventory_hostname, picks this host's part}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"payload": {"type": "str", "required": True},
                                          "host": {"type": "str", "required": True}})
    try:
        part = decode_payload(module.params["payload"], module.params["host"])
        result = prepare_host(part)
    except Locked as exc:
        module.fail_json(msg=str(exc), holder=exc.holder, locked=True)
    except HostError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
