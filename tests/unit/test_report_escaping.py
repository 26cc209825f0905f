"""Text from a spec or a host cannot add markup to a report, hide in it, or break it.

Each fixture journal is given hostile strings (markup, attribute break-outs, terminal
escapes, bidi overrides, a lone surrogate, Markdown syntax, newlines) in the places a
spec author or a target controls. The HTML is parsed with html.parser and the
Markdown with markdown-it (CommonMark + GFM tables, the parser rich uses); each must
have exactly the structure it has when the same places hold a harmless word, so no
element, attribute, link, emphasis or table cell came from the journal.
"""

from __future__ import annotations

import copy
import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from markdown_it import MarkdownIt

from ctdrill.report import build_report, render_html, render_markdown
from ctdrill.report.safe import html_text, md_code, md_text, visible
from ctdrill.spec.models import DrillSpec
from tests.unit.test_report_support import Tree, records

ALL = ["table-pressure-replay", "capacity-step", "revert-failed-recovered", "refused-locked"]
EVIL = ("<script>alert(1)</script>\"><img src=x onerror=1>' \x1b[31mred\x1b[0m \x07\x00"
        "\x9b\u202egnp.exe\u200b\ud800 | *em* _u_ `code` [l](javascript:alert(1)) "
        "![i](x) ~~s~~ $m$ &amp; <!-- c --> ]]>\n# heading\r\n1. item\n- item\n|a|b|")
HARMLESS = "plainword"
MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])

Record = dict[str, Any]


def _rename(value: Any, names: dict[str, str]) -> Any:
    """Every string equal to a host name, and every key that is one, renamed."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [_rename(v, names) for v in value]
    if isinstance(value, dict):
        return {names.get(k, k): _rename(v, names) for k, v in value.items()}
    return value


def spec_and_hosts(recs: list[Record], text: str) -> list[Record]:
    """The spec's free text (description, expectation names), the verdicts that carry
    them, and the host names (from the inventory, in every record but the spec, which
    names hosts by plain names only) all hold `text`; the spec still validates, so every spec-derived part of the report is drawn (a spec cannot hold a
    lone surrogate: pydantic refuses it, so that one is left to every_string)."""
    text = text.replace("\ud800", "")
    hosts = {r["host"] for r in recs if isinstance(r.get("host"), str)}
    spec = copy.deepcopy(recs[0]["spec"])  # a spec names hosts by plain names only
    recs = _rename(recs, {h: f"{h}{text}" for h in hosts})
    recs[0]["spec"] = spec
    spec["description"] = text
    for i, exp in enumerate(spec["expect"]):
        exp["name"] = f"{i}{text}"
    for r in recs:
        if r["type"] == "verdict":
            r["name"], r["detail"] = f"{r['name']}{text}", f"{r.get('detail', '')}{text}"
    DrillSpec.model_validate(spec)
    return recs


def every_string(recs: list[Record], text: str) -> list[Record]:
    """Every string value of every record (run id, paths, reasons, rules, sysctl values,
    advice, problems, regimes...) with `text` appended; only record types stay."""
    def walk(value: Any, key: str) -> Any:
        if isinstance(value, str):
            return value if key == "type" else value + text
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        return value
    return [walk(r, "") for r in recs]


POISONS: dict[str, Callable[[list[Record], str], list[Record]]] = {
    "spec-and-hosts": spec_and_hosts, "every-string": every_string}


def html_shape(text: str) -> Counter[tuple[str, tuple[str, ...]]]:
    """Each element with its attribute names: the page's structure without its text."""
    tree = Tree(text)
    assert not tree.errors, tree.errors[:3]
    return Counter((n.tag, tuple(sorted(n.attrs))) for n in tree.root.iter())


def md_shape(text: str) -> Counter[str]:
    """Every block and inline token markdown-it makes, text runs aside."""
    found: Counter[str] = Counter()
    for tok in MD.parse(text):
        found[tok.type] += 1
        for child in tok.children or ():
            if child.type not in ("text", "softbreak"):
                found[child.type] += 1
    return found


def hidden_characters(text: str) -> set[str]:
    """Control, bidi/invisible-format and surrogate characters a reader cannot see."""
    return {c for c in text if (unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")
                                and c not in "\n\t") or c in "\u202e\u200b"}


def rendered(name: str, poison: str, text: str) -> tuple[str, str]:
    report = build_report(POISONS[poison](records(name), text), journal=f"/runs/{text}/j")
    return render_html(report), render_markdown(report)


@pytest.mark.parametrize("poison", sorted(POISONS))
@pytest.mark.parametrize("name", ALL)
def test_html_structure_is_the_reports_own(name: str, poison: str) -> None:
    html, _ = rendered(name, poison, EVIL)
    harmless, _ = rendered(name, poison, HARMLESS)
    assert html_shape(html) == html_shape(harmless)
    tags = {n.tag for n in Tree(html).root.iter()}
    assert not tags & {"script", "img", "iframe", "object", "embed", "a"}
    html.encode("utf-8")  # a lone surrogate would have made the file unwritable


@pytest.mark.parametrize("poison", sorted(POISONS))
@pytest.mark.parametrize("name", ALL)
def test_html_shows_the_text_verbatim_with_controls_made_visible(name: str,
                                                                 poison: str) -> None:
    html, _ = rendered(name, poison, EVIL)
    assert not hidden_characters(html)
    text = Tree(html).root.all_text()
    assert "<script>alert(1)</script>\"><img src=x onerror=1>" in text
    assert "\u241b[31mred" in text and "\\x9b\\u202egnp.exe\\u200b" in text
    assert poison != "every-string" or "\\u200b\\ud800" in text


@pytest.mark.parametrize("poison", sorted(POISONS))
@pytest.mark.parametrize("name", ALL)
def test_markdown_structure_is_the_summarys_own(name: str, poison: str) -> None:
    _, md = rendered(name, poison, EVIL)
    _, harmless = rendered(name, poison, HARMLESS)
    shape = md_shape(md)
    assert shape == md_shape(harmless)
    assert not {"html_inline", "html_block", "link_open", "image", "em_open",
                "s_open"} & set(shape)
    assert not hidden_characters(md)
    page = Tree(MD.render(md))  # what a Markdown viewer would show
    assert not {n.tag for n in page.root.iter()} & {"script", "img", "a"}
    assert "<script>alert(1)</script>" in page.root.all_text()


def test_markdown_tables_keep_their_cells() -> None:
    _, md = rendered("capacity-step", "spec-and-hosts", EVIL)
    tokens = MD.parse(md)
    rows: list[int] = []
    for tok in tokens:
        if tok.type == "tr_open":
            rows.append(0)
        elif tok.type in ("th_open", "td_open"):
            rows[-1] += 1
    assert rows and rows.count(4) >= 6  # expectations: header + 5 rows, 4 cells each
    assert all(n in (4, 5, 6) for n in rows)
    assert not any("\n" in line.strip("|") and line.startswith("|")
                   for line in md.splitlines())


def test_escaping_functions() -> None:
    assert visible("a\x1bb\x00\x7f\x85\u202e\ud800\u2028") == \
        "a\u241bb\u2400\u2421\\x85\\u202e\\ud800\\u2028"
    assert visible("line\nnext\t", keep="\n\t") == "line\nnext\t"
    assert visible("plain ascii and ünïcödé 中文 ✅") == "plain ascii and ünïcödé 中文 ✅"
    assert html_text('<a href="x">&\'') == "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"
    assert md_text("CT_HEALTHY → a|b\nc") == "CT_HEALTHY → a\\|b c"
    assert md_text("1. x") == "1\\. x" and md_text("- x") == "\\- x"
    assert md_code("a`b") == "``a`b``" and md_code("`x") == "`` `x ``"
    assert md_code("a|b", in_table=True) == "`a\\|b`"
