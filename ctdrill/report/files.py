"""Reading a run's journal (and the replay profile it names) and writing report files
atomically: the I/O around the pure builders, shared by `ctdrill report` and game days.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ctdrill.errors import CtdrillError, InvalidInput
from ctdrill.journal import read_journal
from ctdrill.report import FORMATS, build_report
from ctdrill.report.model import Report
from ctdrill.report.prom import render_prom

LAST_SUCCESS = "ctdrill_drill_last_success_timestamp_seconds"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def load_records(path: Path) -> list[dict[str, Any]]:
    """The journal's records; a run directory stands for its journal.jsonl. Anything
    that is not a ctdrill journal is one line of invalid input, never a traceback."""
    if path.is_dir():
        path = path / "journal.jsonl"
    try:
        records = read_journal(path)
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not a ctdrill journal (not UTF-8 text)",
                           "pass a run's journal.jsonl") from None
    except AttributeError:  # a JSON line that is not an object
        raise InvalidInput(f"{path} is not a ctdrill journal",
                           "pass a run's journal.jsonl") from None
    return [r for r in records if isinstance(r, dict)]


def _replay_profile(records: list[dict[str, Any]], journal: Path
                    ) -> list[tuple[float, float]] | None:
    """The replayed (t, rate) profile, when the spec replays one and the file is still
    where the spec said (relative to the spec file, as the drill resolved it)."""
    from ctdrill.surge.profile import load_profile

    start = records[0]
    spec = start.get("spec") if isinstance(start.get("spec"), dict) else {}
    shape = ((spec or {}).get("load") or {}).get("shape") or {}
    name = shape.get("profile") if isinstance(shape, dict) else None
    if not isinstance(name, str) or not name:
        return None
    spec_dir = Path(str(start.get("spec_path") or "")).parent
    for candidate in (Path(name), spec_dir / name, journal.parent / Path(name).name):
        if candidate.is_file():
            try:
                return load_profile(candidate)
            except CtdrillError:
                return None
    return None


def write_atomic(path: Path, text: str) -> None:
    """Write then rename: node_exporter (or a browser) never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_report(journal: Path) -> Report:
    """Journal file -> report model (reads files; the building itself is pure)."""
    records = load_records(journal)
    path = journal / "journal.jsonl" if journal.is_dir() else journal
    try:
        return build_report(records, journal=str(path.resolve()),
                            profile=_replay_profile(records, path))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InvalidInput(f"journal {path} has a malformed record ({exc!r})",
                           "the journal must be the unedited file ctdrill wrote") from None


def write_reports(journal: Path, out: Path, names: list[str]) -> dict[str, str]:
    """Render the named formats of one run's report into `out`; name -> path written."""
    r = make_report(journal)
    written = {}
    for name in names:
        filename, render = FORMATS[name]
        write_atomic(out / filename, render(r))
        written[name] = str(out / filename)
    return written


def previous_last_success(path: Path, drill: str) -> float | None:
    """The drill's last-success time in an earlier textfile, read with prometheus_client's
    own parser; anything unreadable counts as no earlier success."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = path.read_text(encoding="utf-8")
        for fam in text_string_to_metric_families(text):
            for sample in fam.samples:
                if sample.name == LAST_SUCCESS and sample.labels.get("drill") == drill:
                    return float(sample.value)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return None


def write_textfile(directory: Path, r: Report) -> Path:
    """`ctdrill-DRILL.prom` in node_exporter's textfile directory, replaced atomically;
    the last success survives a failing run. The drill name comes from the journal, so
    one that is not a plain file name is refused rather than followed."""
    if not SAFE_NAME.fullmatch(r.drill):
        raise InvalidInput(f"drill name {r.drill!r} cannot name a textfile",
                           "the journal must be the unedited file ctdrill wrote")
    path = directory / f"ctdrill-{r.drill}.prom"
    write_atomic(path, render_prom(r, previous_last_success(path, r.drill)))
    return path
