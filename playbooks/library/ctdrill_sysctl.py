#!/usr/bin/python
"""Set one sysctl through /proc/sys and verify it by reading it back."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.ctdrill_host import HostError, normalise, read_sysctl, write_sysctl

DOCUMENTATION = r"""
module: ctdrill_sysctl
short_description: Write a sysctl via /proc/sys with read-back verification
options:
  name: {type: str, required: true}
  value: {type: str, required: true}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"name": {"type": "str", "required": True},
                                          "value": {"type": "str", "required": True}},
                           supports_check_mode=True)
    name, value = module.params["name"], module.params["value"]
    before = read_sysctl(name)
    if before is None:
        module.fail_json(msg=f"sysctl {name} does not exist on this host", name=name)
    if module.check_mode:
        module.exit_json(changed=before != normalise(value), name=name, before=before,
                         after=normalise(value))
    try:
        before, after = write_sysctl(name, value)
    except HostError as exc:
        module.fail_json(msg=str(exc), name=name, before=before)
    module.exit_json(changed=before != after, name=name, before=before, after=after)


if __name__ == "__main__":
    main()
