"""`ctdrill analyze --prometheus` against a real Prometheus (Debian's /usr/bin/prometheus)
scraping node_exporter inside the lab gateway's namespace (so its conntrack is the
gateway's) and `ctdrill watch` on the gateway, while a surge fills the gateway's table.

The same samples exported from Prometheus itself (an instant range query: the raw
samples, another API than the loader's query_range) to CSV must give the same analysis
as reading Prometheus directly, for node_exporter's series and for ctdrill watch's; a gap
(node_exporter stopped for a while) is reported, and the bad inputs (empty selection, a
PromQL error in the match, an unreachable server, something that is not Prometheus) are
one line each with their exit codes. Every process started here runs in its own session
in a ctd-prefixed temp dir, and is stopped and reaped in a `finally`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ctdrill.errors import ExitCode
from ctdrill.lab.manager import LabUp
from ctdrill.system.knobs import global_knobs
from tests.integration.helpers import flush_conntrack
from tests.waiting import wait_until

pytestmark = pytest.mark.root

PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
NODE_PORT = 9100  # in the gateway's namespace, on its management address
NODE = {"count": "node_nf_conntrack_entries", "max": "node_nf_conntrack_entries_limit",
        "drops": "node_nf_conntrack_stat_drop"}
CTDRILL = {"ctr": "ctdrill_conntrack_table_ratio",
           "drops": "ctdrill_conntrack_new_flow_drops_total"}
ARGS = ["--reps", "50", "--block", "10", "--caliper", "3", "--episode-window", "2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A child in its own session (its group is stopped as one), output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    """`sig` to the child's group, SIGKILL if it lingers; always reaped."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
    proc.wait()


@dataclass
class Stack:
    url: str
    lab: LabUp
    node_argv: list[str]
    work: Path
    procs: dict[str, subprocess.Popen[bytes]]

    def api(self, path: str, **params: str) -> Any:
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{q}", timeout=10) as resp:
            return json.load(resp)["data"]

    def latest(self, metric: str) -> float:
        """The newest sample time of `metric` on gw (0 when there is none)."""
        result = self.api("/api/v1/query", query=f"timestamp({metric})")["result"]
        return max((float(r["value"][1]) for r in result), default=0.0)

    def value(self, query: str) -> float | None:
        result = self.api("/api/v1/query", query=query)["result"]
        return float(result[0]["value"][1]) if result else None

    def node_health(self) -> str:
        targets = self.api("/api/v1/targets", state="active")["activeTargets"]
        return str(next(t["health"] for t in targets if t["labels"]["job"] == "node"))


def prometheus_config(gw_addr: str, watch_port: int) -> str:
    return (
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n"
        f"  - job_name: node\n    static_configs:\n"
        f"      - targets: ['{gw_addr}:{NODE_PORT}']\n"
        f"        labels: {{instance: 'gw:{NODE_PORT}'}}\n"
        f"  - job_name: ctdrill\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{watch_port}']\n")


@contextmanager
def stack(lab: LabUp) -> Iterator[Stack]:
    """Prometheus, node_exporter in gw's namespace and `ctdrill watch` on gw, all scraped
    at 1 s; torn down whatever happens."""
    for binary in (PROMETHEUS, NODE_EXPORTER):
        assert Path(binary).exists(), f"{binary} is missing (apt-get install prometheus " \
                                      "prometheus-node-exporter)"
    work = Path(tempfile.mkdtemp(prefix="ctd-prom-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    gw = lab.plan.host("gw")
    node_argv = ["ip", "netns", "exec", gw.netns, NODE_EXPORTER,
                 f"--web.listen-address={gw.mgmt_ns_addr}:{NODE_PORT}",
                 "--collector.disable-defaults", "--collector.conntrack"]
    try:
        watch_port, prom_port = free_port(), free_port()
        procs["watch"] = start([sys.executable, "-m", "ctdrill", "watch", "-i",
                                str(lab.plan.inventory_path), "--hosts", "gw", "--hz", "10",
                                "--window", "0.5", "--listen", f"127.0.0.1:{watch_port}"],
                               work / "watch.log")
        procs["node"] = start(node_argv, work / "node.log")
        (work / "prometheus.yml").write_text(prometheus_config(gw.mgmt_ns_addr, watch_port))
        procs["prometheus"] = start([PROMETHEUS, f"--config.file={work / 'prometheus.yml'}",
                                     f"--storage.tsdb.path={work / 'data'}",
                                     f"--web.listen-address=127.0.0.1:{prom_port}"],
                                    work / "prometheus.log")
        s = Stack(f"http://127.0.0.1:{prom_port}", lab, node_argv, work, procs)
        wait_until(lambda: _answers(s), "Prometheus to answer queries")
        wait_until(lambda: s.latest(NODE["count"]) and s.latest(CTDRILL["ctr"]),
                   "Prometheus to scrape node_exporter and ctdrill watch")
        yield s
    finally:
        for name, proc in procs.items():  # the watch closes its agent on Ctrl-C
            stop(proc, signal.SIGINT if name == "watch" else signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)


def _answers(s: Stack) -> bool:
    try:
        s.api("/api/v1/query", query="up")
    except OSError:
        return False
    return True


def both_after(s: Stack, t: float) -> bool:
    return s.latest(NODE["count"]) > t and s.latest(CTDRILL["ctr"]) > t


def record_drill(s: Stack) -> tuple[float, float]:
    """Calm, a node_exporter outage (a gap), calm, a surge to CTR >= 0.9 seen by both
    families, flush, calm; returns (first, last) sample time of the story."""
    gw_ns = s.lab.plan.host("gw").netns
    flush_conntrack(gw_ns)
    t0 = max(s.latest(NODE["count"]), s.latest(CTDRILL["ctr"]))
    wait_until(lambda: both_after(s, t0 + 8), "calm samples")
    stop(s.procs["node"])  # the gap
    wait_until(lambda: s.node_health() == "down", "Prometheus to see node_exporter down")
    down = s.latest(CTDRILL["ctr"])
    wait_until(lambda: s.latest(CTDRILL["ctr"]) > down + 3, "a few seconds of the gap")
    s.procs["node"] = start(s.node_argv, s.work / "node.log")
    wait_until(lambda: s.node_health() == "up" and both_after(s, down + 6), "node_exporter back")
    with global_knobs({"net.netfilter.nf_conntrack_max": 3000}):
        surge = subprocess.Popen(
            [sys.executable, "-m", "ctdrill", "surge", "-i", str(s.lab.plan.inventory_path),
             "--rate", "5000", "--duration", "3", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            high = f"{NODE['count']} / {NODE['max']} >= 0.9"
            wait_until(lambda: s.value(high) is not None
                       and s.value(f"{CTDRILL['ctr']} >= 0.9") is not None,
                       "both families to see the table over 90 %")
        finally:
            surge.communicate(timeout=60)
        flush_conntrack(gw_ns)
        wait_until(lambda: s.value(f"{NODE['count']} / {NODE['max']} < 0.5") is not None
                   and s.value(f"{CTDRILL['ctr']} < 0.5") is not None,
                   "both families to see the flushed table")
    hi = max(s.latest(NODE["count"]), s.latest(CTDRILL["ctr"])) + 8
    # past the end of the window analyze reads (hi + --episode-window + 3 steps), so
    # it and the later export see the same, complete samples
    wait_until(lambda: both_after(s, hi + 8), "calm samples after the surge")
    return t0, hi


def order_log(path: Path, lo: float, hi: float) -> Path:
    """Two orders a second on gw over [lo, hi] with random covariates: the analysis needs
    orders on both sides of the surge, not a real effect."""
    rng = np.random.default_rng(5)
    start_t = np.arange(lo, hi - 2, 0.5)
    n = start_t.size
    end = start_t + rng.uniform(0.1, 1.5, n)
    end[-1] = hi
    pd.DataFrame({"order_id": np.arange(n), "host": "gw", "start": start_t, "end": end,
                  "is_bps": rng.normal(2, 1, n), "spread_bps": rng.uniform(1, 3, n),
                  "volatility": rng.uniform(0.5, 1.5, n),
                  "participation": rng.uniform(0.01, 0.1, n)}).to_csv(path, index=False)
    return path


def export_csv(s: Stack, columns: dict[str, str], window: list[float], path: Path) -> Path:
    """The raw samples of gw's series inside `window`, from an instant range query (what
    a user exporting from Prometheus gets), one CSV row per scrape."""
    frame: pd.DataFrame | None = None
    for column, metric in columns.items():
        rng = math.ceil(window[1] - window[0]) + 60
        result = s.api("/api/v1/query", query=f"{metric}[{rng}s]",
                       time=f"{window[1]:.3f}")["result"]
        assert len(result) == 1, result
        rows = pd.DataFrame([(float(t), float(v)) for t, v in result[0]["values"]],
                            columns=["t", column])
        frame = rows if frame is None else frame.merge(rows, on="t")
    assert frame is not None
    frame = frame[(frame["t"] >= window[0]) & (frame["t"] <= window[1])]
    frame.assign(host="gw").to_csv(path, index=False)
    return path


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ctdrill", "analyze", *args],
                          capture_output=True, text=True, timeout=300)


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("inputs", "timings_s")}


def test_analysis_from_prometheus_equals_the_same_samples_as_csv(
        lab: LabUp, tmp_path: Path) -> None:
    with stack(lab) as s:
        lo, hi = record_drill(s)
        log = order_log(tmp_path / "orders.csv", lo, hi)
        for family, columns in (("node", NODE), ("ctdrill", CTDRILL)):
            read = analyze(str(log), "--prometheus", s.url, "--prometheus-metrics", family,
                           "--out", str(tmp_path / family), "--json", *ARGS)
            assert read.returncode == 0, read.stderr
            doc = json.loads(read.stdout)
            found = doc["inputs"]["prometheus"]
            assert found["hosts"]["gw"]["metrics"] == {"node": "node_exporter"}.get(family,
                                                                                   family)
            assert doc["labels"]["high"] > 0 and doc["labels"]["low"] > 0
            csv = export_csv(s, columns, found["window"], tmp_path / f"{family}.csv")
            res = analyze(str(log), "--timeline", str(csv), "--out",
                          str(tmp_path / f"{family}-csv"), "--json", *ARGS)
            assert res.returncode == 0, res.stderr
            from_csv = json.loads(res.stdout)
            assert from_csv["inputs"]["samples"] == doc["inputs"]["samples"]
            assert comparable(doc) == comparable(from_csv)
            if family == "node":  # node_exporter was stopped for a while: reported
                assert found["hosts"]["gw"]["gaps"] >= 1
                assert "gw: samples" in read.stderr and "gap" in read.stderr
        _bad_inputs(s, log, tmp_path)


def _one_line(res: subprocess.CompletedProcess[str], code: ExitCode, *needles: str) -> None:
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    for needle in needles:
        assert needle in res.stderr, res.stderr


def _bad_inputs(s: Stack, log: Path, tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "bad")]
    _one_line(analyze(str(log), "--prometheus", s.url, "--prometheus-match", 'job="nope"',
                      *out), ExitCode.INVALID_INPUT, "no series", 'job="nope"', NODE["count"],
              CTDRILL["ctr"])
    _one_line(analyze(str(log), "--prometheus", s.url, "--prometheus-match", 'job=~"node',
                      *out), ExitCode.INVALID_INPUT, "parse error")
    _one_line(analyze(str(log), "--prometheus", f"http://127.0.0.1:{free_port()}", *out),
              ExitCode.ENVIRONMENT, "cannot reach Prometheus")
    gw = s.lab.plan.host("gw")
    _one_line(analyze(str(log), "--prometheus", f"http://{gw.mgmt_ns_addr}:{NODE_PORT}",
                      *out), ExitCode.INVALID_INPUT, "like Prometheus")
