"""Specs are data: a template, a shell substitution, backticks or `;` in any string field
of any spec kind is refused, or (free text and paths only) kept verbatim as text."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ctdrill.spec.loader import SpecError, load_document_text
from tests.injection import mutations

FREE_TEXT = re.compile(r"(description|expect\.\d+\.name|blackout\.windows\.\d+\.name"
                       r"|drills\.\d+\.(spec|inventory)|load\.shape\.profile)#\d$")
"""Fields whose text is only ever shown (escaped) or used as a path: never run."""


def test_every_string_field_refuses_code_or_keeps_it_as_text(tmp_path: Path) -> None:
    sentinel = tmp_path / "sentinel"
    accepted, refused = [], 0
    for label, text in mutations(sentinel):
        try:
            doc = load_document_text(text, label)
        except SpecError:
            refused += 1
            continue
        accepted.append(label)
        field = label.split(":", 1)[1]
        assert FREE_TEXT.search(field), f"{label}: code-like text accepted in a typed field"
        assert doc.model_dump(mode="json", exclude_unset=True) == yaml.safe_load(text) or \
            str(sentinel) in yaml.safe_dump(doc.model_dump(mode="json")), label
    assert refused > 1000 and accepted  # the corpus reached every field kind
    assert not sentinel.exists()
