#!/usr/bin/python
"""Create, replace or delete one ctdrill-owned nftables table (named ctd_*), nothing else."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.ctdrill_host import (
    HostError,
    check_own_table,
    nft_apply_table,
    nft_delete_table,
    nft_tables,
)

DOCUMENTATION = r"""
module: ctdrill_nft
short_description: Manage a ctd_* nftables table atomically
options:
  family: {type: str, default: inet}
  table: {type: str, required: true}
  body: {type: str, default: ""}
  state: {type: str, choices: [present, absent], default: present}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={
        "family": {"type": "str", "default": "inet"},
        "table": {"type": "str", "required": True},
        "body": {"type": "str", "default": ""},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    }, supports_check_mode=True)
    p = module.params
    try:
        check_own_table(p["table"])
        existed = [p["family"], p["table"]] in nft_tables()
        if module.check_mode:
            module.exit_json(changed=(p["state"] == "present") or existed)
        if p["state"] == "absent":
            module.exit_json(changed=nft_delete_table(p["family"], p["table"]))
        listing = nft_apply_table(p["family"], p["table"], p["body"])
        module.exit_json(changed=True, existed=existed, listing=listing)
    except HostError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
