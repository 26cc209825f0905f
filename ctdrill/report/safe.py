"""Text from a spec or a host, made safe to show in a report.

A journal carries text that targets and spec authors wrote (host names, messages,
rules, expectation names). Every renderer passes each such value through one function
here: `html_text` for HTML and SVG, `md_text` / `md_code` for Markdown. Control
characters become visible (ESC as U+241B "␛", C1 and bidi/invisible format characters
as "\\x9b" / "\\u202e"), so a report can neither carry a terminal escape nor hide or
reorder what it says.
"""

from __future__ import annotations

import html
import re
import unicodedata

# invisible or reordering: the Trojan-source set, zero-width space and the BOM
HIDDEN = frozenset(chr(c) for c in (0x061C, 0x200B, 0x200E, 0x200F, *range(0x202A, 0x202F),
                                    *range(0x2066, 0x206A), 0xFEFF))
MD_SPECIAL = re.compile(r"([\\`*\[\]<>&|~$])")  # $: GitHub math
MD_LEADING_MARK = re.compile(r"^([-+=#])")  # a list item, setext underline or heading
MD_LEADING_NUMBER = re.compile(r"^(\d+)([.)])")  # an ordered list item
MD_INTRAWORD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def visible(value: object, keep: str = "") -> str:
    """str(value) with every control, bidi, invisible-format or surrogate character
    replaced by a visible stand-in; characters in `keep` (e.g. newline) stay."""
    text = str(value)
    if text.isascii() and text.isprintable():
        return text
    out = []
    for c in text:
        o = ord(c)
        if c in keep:
            out.append(c)
        elif o < 0x20:
            out.append(chr(0x2400 + o))  # control pictures: ␀ .. ␟
        elif o == 0x7F:
            out.append("\u2421")  # ␡
        elif 0x80 <= o < 0xA0:
            out.append(f"\\x{o:02x}")
        elif c in HIDDEN or unicodedata.category(c) in ("Zl", "Zp", "Cs"):
            out.append(f"\\u{o:04x}")
        else:
            out.append(c)
    return "".join(out)


def html_text(value: object) -> str:
    """Text or attribute value for HTML/SVG: visible, then &, <, >, " and ' escaped.
    Newlines and tabs stay (a <pre> of rules needs them; elsewhere they are spaces)."""
    return html.escape(visible(value, keep="\n\t"), quote=True)


def one_line(value: object) -> str:
    """Line breaks and tabs as spaces, surrounding space trimmed."""
    return re.sub(r"[\r\n\t]+", " ", str(value)).strip()


def md_text(value: object) -> str:
    """Inline Markdown that shows the value verbatim: one line, no raw HTML, no emphasis,
    link, code or table-cell syntax (CommonMark backslash escapes), no block marker."""
    text = MD_SPECIAL.sub(r"\\\1", visible(one_line(value)))
    text = MD_INTRAWORD_UNDERSCORE.sub(r"\\_", text)
    text = MD_LEADING_MARK.sub(r"\\\1", text)
    return MD_LEADING_NUMBER.sub(r"\1\\\2", text)


def md_code(value: object, *, in_table: bool = False) -> str:
    """A Markdown code span holding the value verbatim. In a GFM table a pipe splits the
    row even inside a code span, so there it is escaped (GFM drops that backslash)."""
    text = visible(one_line(value))
    if in_table:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
