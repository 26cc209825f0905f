"""`ctdrill analyze LOG --timeline TL` (or `--prometheus URL`): attribute tail slippage
in a production execution log to conntrack pressure (docs/ANALYSIS.md). Calls
ctdrill.api.analyze (which writes JSON + Markdown + HTML) and shows a table.

pandas, numpy, scipy and statsmodels load inside the call: only `analyze` pays for
them, not every command (docs/BENCH-cli.md)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ctdrill import api
from ctdrill.cli.common import console, err_console, handle_errors, print_json


def _show(result: api.AnalysisResult) -> None:
    analysis = result.analysis
    console.print(f"[bold]{analysis.verdict}[/]", highlight=False)
    if analysis.canary is not None:
        style = "green" if analysis.canary.infra_causal else "yellow"
        console.print(f"[{style}]canary: {analysis.canary.verdict}[/]", highlight=False)
    for title, header, rows in result.tables():
        table = Table(title=title, title_justify="left")
        for h in header:
            table.add_column(h)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print("reports: " + ", ".join(str(p) for p in result.paths.values()),
                  highlight=False)


@handle_errors
def analyze(
    log: Path = typer.Argument(..., help="Parent-order execution log (CSV or Parquet)."),
    timeline: list[Path] | None = typer.Option(None, "--timeline", "-t",
                                               help="Pressure timeline: CSV/Parquet "
                                                    "samples, drill journal or JSON lines; "
                                                    "repeatable, and a quoted glob is "
                                                    "expanded."),
    prometheus: str | None = typer.Option(None, "--prometheus",
                                          help="Read the timeline from this Prometheus "
                                               "server instead (base URL), over the log's "
                                               "span."),
    prom_match: str | None = typer.Option(None, "--prometheus-match",
                                          help="PromQL label matchers for the series, "
                                               "e.g. 'instance=~\"gw-.*\"'."),
    prom_step: float | None = typer.Option(None, "--prometheus-step",
                                           help="Query step in seconds (default: half "
                                                "the server's shortest scrape interval)."),
    prom_metrics: str = typer.Option("auto", "--prometheus-metrics",
                                     help="node (node_exporter), ctdrill (ctdrill watch) "
                                          "or auto (node where a host has it)."),
    prom_host_label: str | None = typer.Option(None, "--prometheus-host-label",
                                               help="Label naming the host (default: host, "
                                                    "else instance without its port)."),
    prom_timeout: float = typer.Option(30.0, "--prometheus-timeout",
                                       help="Seconds to wait for each Prometheus answer."),
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
    episode_window: float = typer.Option(60.0, "--episode-window",
                                         help="Cancel/replace: seconds before and after "
                                              "a pressure episode."),
    features: Path | None = typer.Option(None, "--features",
                                         help="Write per-order pressure features here "
                                              "(Parquet by .parquet suffix, else CSV)."),
) -> None:
    """Attribute tail implementation shortfall to conntrack pressure (matched, host FE)."""
    options = api.AnalysisOptions(
        ctr_high=ctr_high, ctr_low=ctr_low, method=method, k=k, caliper=caliper, bins=bins,
        tod_bins=tod_bins, reps=reps, seed=seed, block_s=block, qr_sample=qr_sample,
        canary=canary, change_at=change_at, episode_window_s=episode_window)
    source = None if prometheus is None else api.PrometheusOptions(
        prometheus, prom_match, prom_step, prom_metrics, prom_host_label, prom_timeout)
    result = api.analyze(log, timeline or [], out_dir=out, options=options,
                         features=features, prometheus=source,
                         on_skipped=lambda path, why: err_console.print(
                             f"note: {path}: {why}, skipped", highlight=False,
                             soft_wrap=True, markup=False))
    for note in result.notes:
        err_console.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
    if json_out:
        print_json(result.to_json())
    else:
        _show(result)
