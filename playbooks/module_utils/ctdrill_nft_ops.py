"""nftables, limited to ctdrill's own tables (named ctd_*); changes are atomic batches."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy sees these files as top-level modules (see ctdrill_env)
    from ctdrill_env import HostEnv, HostError, resolve
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import HostEnv, HostError, resolve

OWN_TABLE_PREFIX = "ctd_"


def nft_ruleset(env: HostEnv | None = None) -> str:
    """The whole ruleset, stateless (no counter values), as nft prints it: counters then
    never count as drift when a snapshot is compared."""
    return resolve(env).nft(["-s", "list", "ruleset"], None)


def nft_tables(env: HostEnv | None = None) -> list[list[str]]:
    """Every table here as [family, name]."""
    out = resolve(env).nft(["list", "tables"], None)
    tables = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table":
            tables.append([parts[1], parts[2]])
    return tables


def check_own_table(name: str) -> None:
    """Refuse (HostError) any table ctdrill does not own."""
    if not name.startswith(OWN_TABLE_PREFIX):
        raise HostError(f"refusing to touch nft table {name!r}: ctdrill only manages tables "
                        f"named {OWN_TABLE_PREFIX}*")


def nft_apply_table(family: str, name: str, body: str, env: HostEnv | None = None) -> str:
    """Create or replace one of our tables atomically (add, delete, add in one batch)."""
    env = resolve(env)
    check_own_table(name)
    script = (f"table {family} {name}\ndelete table {family} {name}\n"
              f"table {family} {name} {{\n{body}\n}}\n")
    env.nft(["-f", "-"], script)
    return env.nft(["-s", "list", "table", family, name], None)


def nft_delete_table(family: str, name: str, env: HostEnv | None = None) -> bool:
    """Delete one of our tables if it exists; True when it did."""
    env = resolve(env)
    check_own_table(name)
    if [family, name] in nft_tables(env):
        env.nft(["delete", "table", family, name], None)
        return True
    return False
