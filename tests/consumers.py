"""The real consumers of ctdrill's outputs, for tests that hand an output to them.

An output is checked by the program that will read it (promtool, systemd-analyze, a
browser), never by a grammar the test wrote. When the program is missing, a CI run
fails (scripts/test.sh installs it, so missing means a broken set-up) and a developer's
run skips with the reason and the package to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

# tool -> the Debian package that ships it (scripts/test.sh installs these)
PACKAGES = {"promtool": "prometheus", "systemd-analyze": "systemd", "chromium": "chromium"}
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


def require_tool(name: str) -> str:
    """Path of the tool `name`; missing: pytest.fail when CI is set, else pytest.skip."""
    found = shutil.which(name) or shutil.which(name, path=SBIN)
    if found:
        return found
    why = (f"{name} is not installed (Debian package {PACKAGES.get(name, name)!r}; "
           "scripts/test.sh installs it)")
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on an exposition page (stdin); the caller asserts."""
    return subprocess.run([require_tool("promtool"), "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=60, check=False)


def assert_promtool_accepts(text: str) -> None:
    """promtool parses the page and its linter finds nothing to say."""
    result = promtool_check_metrics(text)
    said = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not said, f"promtool check metrics: {said}\n---\n{text}"


Series = dict[str, list[tuple[dict[str, str], float]]]


def series(text: str) -> Series:
    """Sample name -> [(labels, value)], as prometheus_client's own parser reads the page."""
    from prometheus_client.parser import text_string_to_metric_families

    out: Series = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out
