"""Shared helpers of the report tests: the trimmed real journals and an HTML tree.

The fixtures in fixtures/ are real journals of `ctdrill run drills/NAME.yaml`, trimmed
(every 5th/10th telemetry entry, raw counters dropped, snapshots cut to the touched
keys, floats rounded to 6 digits); fixtures/README.md says how.
This module holds no tests itself; its name only keeps it beside them.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from ctdrill.journal import read_journal
from ctdrill.report import build_report
from ctdrill.report.model import Report
from ctdrill.surge.profile import load_profile

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "drills" / "profiles" / "pressure-episode.csv"


def records(name: str) -> list[dict[str, Any]]:
    return read_journal(FIXTURES / f"{name}.jsonl")


def report(name: str, *, profile: bool = True) -> Report:
    points = load_profile(PROFILE) if profile and name.startswith("table-pressure") else None
    return build_report(records(name), journal=f"/runs/{name}/journal.jsonl", profile=points)


def crashed_after_changes() -> Report:
    """The passed table-pressure run cut mid-observation: hosts changed, then the
    orchestrator died (no revert, no end record), the most dangerous journal there is."""
    recs = records("table-pressure-replay")
    cut = next(i for i, rec in enumerate(recs) if rec["type"] == "transition") + 3
    assert not {"revert", "end"} & {rec["type"] for rec in recs[:cut]}
    return build_report(recs[:cut], journal="/runs/crashed/journal.jsonl")


def output_cases() -> dict[str, Report]:
    """Every kind of run an output must render: complete (passed, failed), revert
    failed, refused, and crashed after changing hosts."""
    cases = {name: report(name) for name in ("table-pressure-replay", "capacity-step",
                                             "revert-failed-recovered", "refused-locked")}
    cases["crashed-after-changes"] = crashed_after_changes()
    return cases


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.text: list[str] = []

    def iter(self, tag: str | None = None) -> list[Node]:
        found = [self] if tag in (None, self.tag) else []
        for c in self.children:
            found += c.iter(tag)
        return found

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}


class Tree(HTMLParser):
    """A minimal DOM from html.parser, strict about nesting (a mismatch fails)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root
        self.errors: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.cur))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.cur.tag != tag:
            self.errors.append(f"</{tag}> closes <{self.cur.tag}>")
            return
        assert self.cur.parent is not None
        self.cur = self.cur.parent

    def handle_data(self, data: str) -> None:
        self.cur.text.append(data)
