"""Drill reports: journal -> `Report` (build.py, pure) -> HTML, Markdown, JUnit XML and
Prometheus textfile renderers (pure). The CLI (`ctdrill report`) only reads the journal
and writes the files. docs/REPORTS.md describes what each output shows."""

from __future__ import annotations

from collections.abc import Callable

from ctdrill.errors import InvalidInput
from ctdrill.report.build import build_report
from ctdrill.report.html import render_html
from ctdrill.report.junit import render_junit
from ctdrill.report.markdown import render_markdown
from ctdrill.report.model import Report
from ctdrill.report.prom import render_prom

Renderer = Callable[[Report], str]

FORMATS: dict[str, tuple[str, Renderer]] = {
    "html": ("report.html", render_html),
    "md": ("summary.md", render_markdown),
    "junit": ("junit.xml", render_junit),
    "prom": ("ctdrill.prom", render_prom),
}


def parse_formats(text: str) -> list[str]:
    """'html,md' -> ['html', 'md'] in the given order, duplicates dropped; an unknown
    name is invalid input (the message lists the known ones)."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise InvalidInput(f"unknown report format {unknown[0]!r}" if unknown
                           else "no report format given",
                           f"use a comma-separated list of {', '.join(FORMATS)}")
    return list(dict.fromkeys(names))


__all__ = ["FORMATS", "Report", "build_report", "parse_formats", "render_html",
           "render_junit", "render_markdown", "render_prom"]
