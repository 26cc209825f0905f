"""The HTML report in a real browser: Debian's chromium, headless, offline, takes a
screenshot; the PNG must be the window's size and show the report (many colours, the
charts' own colours, the regime bands), not a blank or error page.

Skipped only where chromium is absent and CI is not set (scripts/test.sh installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from ctdrill.report import render_html
from tests.unit.test_report_support import report

WIDTH, HEIGHT = 1280, 2000


def _chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: scripts/test.sh installs it (apt)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """Width, height, unfiltered rows and bytes per pixel of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + (left + prev[x]) // 2) & 0xFF
        elif kind == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def _near(colours: Counter[tuple[int, int, int]], hex_colour: str, tol: int = 8) -> int:
    want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return sum(n for c, n in colours.items()
               if all(abs(a - b) <= tol for a, b in zip(c, want, strict=True)))


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    page = tmp_path / "report.html"
    page.write_text(render_html(report("table-pressure-replay")), encoding="utf-8")
    shot = tmp_path / "report.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=tmp_path)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("chromium did not finish the screenshot in 120 s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert shot.is_file(), out.decode(errors="replace")[-2000:]
    if os.environ.get("CTDRILL_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["CTDRILL_KEEP_SCREENSHOT"])

    width, height, rows, bpp = decode_png(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    colours: Counter[tuple[int, int, int]] = Counter()
    for row in rows[::2]:
        for x in range(0, len(row), bpp * 2):
            colours[(row[x], row[x + 1], row[x + 2])] += 1
    total = sum(colours.values())
    _, count = colours.most_common(1)[0]
    assert count < 0.9 * total, "the page is (almost) one colour: blank"
    assert len(colours) > 150, f"only {len(colours)} colours: not the report"
    assert _near(colours, "#f9d9c4") > 2000, "no CT_PRESSURED band visible"
    assert _near(colours, "#fcf1c9") > 500, "no CT_TIGHTENING band visible"
    assert _near(colours, "#2f6db5", 30) > 50, "no CTR line visible"
    assert _near(colours, "#c0392b", 30) > 50, "no NFD line visible"
    assert _near(colours, "#e2f3e7") > 100, "no PASSED badge visible"
