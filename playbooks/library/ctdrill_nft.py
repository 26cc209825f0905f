#!/usr/bin/python
"""Create or replace this host's ctd_* nftables table of the run's payload, nothing else.

Fenced like every change: only the run that holds this host's lock can load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible.module_utils.basic import AnsibleModule

if TYPE_CHECKING:  # mypy sees module_utils as top-level modules (see ctdrill_env)
    from ctdrill_env import Fenced, HostError
    from ctdrill_lock import fence, host_mutex
    from ctdrill_nft_ops import check_own_table, nft_apply_table, nft_tables
    from ctdrill_payload import decode_payload
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import Fenced, HostError
    from ansible.module_utils.ctdrill_lock import fence, host_mutex
    from ansible.module_utils.ctdrill_nft_ops import check_own_table, nft_apply_table, nft_tables
    from ansible.module_utils.ctdrill_payload import decode_payload

DOCUMENTATION = r"""
module: ctdrill_nft
short_description: Load the run's ctd_* nftables table atomically
options:
  payload: {type: str, required: true, description: the run's payload, base64 JSON}
  host: {type: str, required: true, description: inventory_hostname, picks this host's part}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"payload": {"type": "str", "required": True},
                                          "host": {"type": "str", "required": True}})
    try:
        part = decode_payload(module.params["payload"], module.params["host"])
        nft = part.get("nft")
        if not nft:
            module.exit_json(changed=False)  # exits
            return
        check_own_table(nft["table"])
        with host_mutex():
            fence(part["run_id"])
            existed = [nft["family"], nft["table"]] in nft_tables()
            listing = nft_apply_table(nft["family"], nft["table"], nft["body"])
        module.exit_json(changed=True, existed=existed, listing=listing)
    except Fenced as exc:
        module.fail_json(msg=str(exc), fenced=True, holder=exc.holder)
    except HostError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
