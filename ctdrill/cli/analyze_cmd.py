"""`ctdrill analyze LOG --timeline TL`: attribute tail slippage in a production execution
log to conntrack pressure (docs/ANALYSIS.md). Reads, calls the pure pipeline, writes
JSON + Markdown + HTML, shows a table."""

from __future__ import annotations

import glob
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from ctdrill.cli.common import console, err_console, handle_errors, print_json
from ctdrill.errors import InvalidInput

if TYPE_CHECKING:
    from ctdrill.analysis.results import AnalysisResult

# pandas, numpy, scipy and statsmodels (ctdrill.analysis) are imported inside the
# functions below: only `analyze` pays for them, not every command (docs/BENCH-cli.md).


def _finite(obj: Any) -> Any:
    """NaN/inf are not JSON: they become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_reports(result: AnalysisResult, out: Path) -> dict[str, Path]:
    """analysis.json, analysis.md and analysis.html in `out`."""
    from ctdrill.analysis.report import render_html, render_markdown

    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "analysis.json", "markdown": out / "analysis.md",
                 "html": out / "analysis.html"}
        paths["json"].write_text(json.dumps(_finite(result.to_json()), indent=2) + "\n")
        paths["markdown"].write_text(render_markdown(result))
        paths["html"].write_text(render_html(result))
    except OSError as exc:
        raise InvalidInput(f"cannot write reports to {out}: {exc.strerror}",
                           "pass a writable directory with --out") from exc
    return paths


def _change_at(text: str) -> float:
    import pandas as pd

    from ctdrill.analysis.timeparse import to_epoch_seconds

    return float(to_epoch_seconds(pd.Series([text]), "--change-at", "value")[0])


def timeline_files(values: list[Path]) -> list[Path]:
    """The -t values with a quoted glob expanded in sorted order (`-t 'runs/*/journal.jsonl'`):
    unquoted, the shell would spread the matches as extra positional arguments."""
    files: list[Path] = []
    for value in values:
        text = str(value)
        if value.exists() or not any(c in text for c in "*?["):
            files.append(value)
            continue
        matches = sorted(glob.glob(text))
        if not matches:
            raise InvalidInput(f"--timeline {text} matches no file",
                               "check the pattern (quoted, ctdrill expands it)")
        files.extend(Path(m) for m in matches)
    return files


def _show(result: AnalysisResult, paths: dict[str, Path]) -> None:
    from ctdrill.analysis.report import tables

    console.print(f"[bold]{result.verdict}[/]", highlight=False)
    if result.canary is not None:
        style = "green" if result.canary.infra_causal else "yellow"
        console.print(f"[{style}]canary: {result.canary.verdict}[/]", highlight=False)
    for title, header, rows in tables(result):
        table = Table(title=title, title_justify="left")
        for h in header:
            table.add_column(h)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print("reports: " + ", ".join(str(p) for p in paths.values()), highlight=False)


@handle_errors
def analyze(
    log: Path = typer.Argument(..., help="Parent-order execution log (CSV or Parquet)."),
    timeline: list[Path] = typer.Option(..., "--timeline", "-t",
                                        help="Pressure timeline: CSV/Parquet samples, "
                                             "drill journal or JSON lines; repeatable, "
                                             "and a quoted glob is expanded."),
    canary: str | None = typer.Option(None, "--canary",
                                      help="Canary hosts (comma-separated, globs ok)."),
    change_at: str | None = typer.Option(None, "--change-at",
                                         help="When the canary change landed (ISO 8601 "
                                              "or epoch seconds)."),
    out: Path = typer.Option(Path("analysis"), "--out", help="Directory for the reports."),
    json_out: bool = typer.Option(False, "--json", help="Print the JSON result."),
    ctr_high: float = typer.Option(0.9, "--ctr-high", help="CTR at or above: high."),
    ctr_low: float = typer.Option(0.7, "--ctr-low", help="CTR below (no drops): low."),
    method: str = typer.Option("nn", "--match", help="nn (nearest neighbours) or cem."),
    k: int = typer.Option(3, "--k", help="nn: low orders per high order."),
    caliper: float = typer.Option(1.0, "--caliper", help="nn: max distance (std units)."),
    bins: int = typer.Option(5, "--bins", help="cem: quantile bins per covariate."),
    tod_bins: int = typer.Option(6, "--tod-bins", help="cem: time-of-day bins."),
    reps: int = typer.Option(200, "--reps", help="Bootstrap replicates."),
    seed: int = typer.Option(7, "--seed", help="Bootstrap and subsample seed."),
    block: float = typer.Option(900.0, "--block", help="Bootstrap cluster length (s)."),
    qr_sample: int = typer.Option(100_000, "--qr-sample",
                                  help="Max orders for quantile regressions."),
) -> None:
    """Attribute tail implementation shortfall to conntrack pressure (matched, host FE)."""
    from ctdrill.analysis.loaders import load_orders, load_timeline
    from ctdrill.analysis.pipeline import Config
    from ctdrill.analysis.pipeline import analyze as run_analysis

    if (canary is None) != (change_at is None):
        raise InvalidInput("--canary and --change-at go together",
                           "pass both (canary validation) or neither")
    if method not in ("nn", "cem"):
        raise InvalidInput(f"--match {method!r} is not a method", "use nn or cem")
    if reps < 20 or k < 1 or bins < 1 or tod_bins < 1 or block <= 0 or caliper <= 0 \
            or qr_sample < 100:
        raise InvalidInput("an option is out of range",
                           "--reps >= 20, --k/--bins/--tod-bins >= 1, --block and "
                           "--caliper > 0, --qr-sample >= 100")
    cfg = Config(ctr_high=ctr_high, ctr_low=ctr_low, method=method, k=k, caliper=caliper,
                 bins=bins, tod_bins=tod_bins, reps=reps, seed=seed, block_s=block,
                 qr_sample=qr_sample, canary=canary,
                 change_at=_change_at(change_at) if change_at is not None else None)
    orders = load_orders(log)
    tl = load_timeline(timeline_files(timeline), skipped=lambda path, why: err_console.print(
        f"note: {path}: {why}, skipped", highlight=False, soft_wrap=True, markup=False))
    result = run_analysis(orders, tl, cfg)
    paths = write_reports(result, out)
    if json_out:
        print_json(_finite(result.to_json()))
    else:
        _show(result, paths)
