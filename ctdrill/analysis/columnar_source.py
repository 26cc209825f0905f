"""One timeline file (CSV or Parquet) as DuckDB SQL: the columns resolved by the loader's
rules (lower case, node_exporter and Prometheus-export aliases, `ctr` or `count`/`max`,
`nfd_per_s` or the cumulative `drops`), checked in one scan, and the SELECT that yields
canonical rows (host, t in epoch seconds, CTR, NFD inputs) without reading the file
into Python. The rules are `loaders.timeline_from_frame`'s; this module states them in
SQL so the columnar engine and the in-memory one give the same numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctdrill.analysis.loaders import PARQUET, TIMELINE_ALIASES, TIMELINE_HINT
from ctdrill.errors import InvalidInput

SUFFIXES = (*PARQUET, ".csv")
NUMERIC = ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT",
           "UTINYINT", "HUGEINT", "DOUBLE", "FLOAT", "DECIMAL")
TIMES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS",
         "TIMESTAMP_S", "DATE")


class Unsupported(Exception):
    """A file this engine does not read (e.g. times as free text): the in-memory loader
    reads it instead, with its own parsing and errors."""


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def double(x: float) -> str:
    """A float as a DOUBLE literal with exactly its value (a bare 0.9 would be DECIMAL)."""
    return f"CAST('{float(x)!r}' AS DOUBLE)"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def reader(path: Path) -> str:
    """The table function reading `path` (read in file order: the connection preserves
    insertion order, so ties in time keep the file's order, as the loader's stable sort
    does)."""
    if path.suffix.lower() in PARQUET:
        return f"read_parquet({quote_literal(str(path))})"
    return f"read_csv({quote_literal(str(path))}, header = true)"


@dataclass(frozen=True)
class Columns:
    """The file's own column names for each canonical one (None: absent)."""

    t: str
    host: str
    ctr: str | None
    count: str | None
    max: str | None
    nfd: str | None
    drops: str | None
    t_type: str


def resolve(con: Any, path: Path) -> Columns:
    """Map the file's columns to the canonical names, or the loader's error."""
    if not path.is_file():
        raise InvalidInput(f"timeline {path} does not exist", "pass an existing file")
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {reader(path)}").fetchall()
    except Exception as exc:  # duckdb raises many types; all mean "unreadable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"cannot read timeline {path}: {first[:160]}",
                           "pass a CSV with a header row, or a Parquet file") from exc
    types = {str(r[0]): str(r[1]) for r in described}
    lower = {name.strip().lower(): name for name in types}
    for alias, canon in TIMELINE_ALIASES.items():
        if alias in lower and canon not in lower:
            lower[canon] = lower[alias]
    missing = [c for c in ("t", "host") if c not in lower]
    if missing:
        raise InvalidInput(f"{path}: missing column{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)}", TIMELINE_HINT)
    has_ctr = "ctr" in lower or ("count" in lower and "max" in lower)
    has_nfd = "nfd_per_s" in lower or "drops" in lower
    if not (has_ctr and has_nfd):
        need = [n for n, ok in (("ctr (or count and max)", has_ctr),
                                ("drops (or nfd_per_s)", has_nfd)) if not ok]
        raise InvalidInput(f"{path}: missing column {' and '.join(need)}", TIMELINE_HINT)
    t_type = types[lower["t"]].split("(")[0]
    if t_type not in NUMERIC and t_type not in TIMES:
        rows = con.execute(f"SELECT count(*) FROM {reader(path)}").fetchall()
        if rows[0][0] == 0:  # a header alone reads as text columns
            raise InvalidInput(f"{path}: no rows", "pass a file with data rows")
        raise Unsupported(f"{path}: times of type {t_type}")
    return Columns(lower["t"], lower["host"], lower.get("ctr"),
                   None if "ctr" in lower else lower.get("count"),
                   None if "ctr" in lower else lower.get("max"), lower.get("nfd_per_s"),
                   None if "nfd_per_s" in lower else lower.get("drops"), t_type)


def _num(name: str) -> str:
    return f"TRY_CAST({quote_ident(name)} AS DOUBLE)"


def _numbers(cols: Columns) -> dict[str, str]:
    """The numeric columns read, by their canonical name."""
    named = {"ctr": cols.ctr, "count": cols.count, "max": cols.max, "nfd_per_s": cols.nfd,
             "drops": cols.drops}
    return {k: v for k, v in named.items() if v is not None}


def raw_time(cols: Columns) -> str:
    """The time column as DOUBLE before scaling (epoch seconds for timestamps)."""
    if cols.t_type in TIMES:
        return f"epoch_ns(CAST({quote_ident(cols.t)} AS TIMESTAMPTZ))::DOUBLE / 1e9"
    return _num(cols.t)


@dataclass(frozen=True)
class FileStats:
    """One scan's findings: rows per host name, the time range, the scale of numeric
    times (epoch s/ms/us/ns by magnitude, the loader's rule), and whether the file is
    clustered by host (read host by host without partitioning it first)."""

    rows: dict[str, int]
    scale: float
    t_min: float
    t_max: float
    clustered: bool = False
    check: tuple[str, ...] = ()
    """Fetched columns (t, ctr, x) whose values are checked as each host is read (the
    footer's stats, `columnar_meta`, say nothing of NaN/inf); empty: the scan did."""


def clustered(con: Any, path: Path, cols: Columns, hosts: list[str]) -> bool:
    """A Parquet file whose row groups each hold one host or a few (an export written
    host by host, or sorted by host): its row-group min/max of the host column let a
    per-host filter read little more than that host's rows. Up to 3 row-group reads per
    row group it beats partitioning (which reads, writes and reads again): at 30M samples
    in 1M-row groups, 50 hosts each spanning one or two groups (2.7 reads a group), the
    label stage took 2.5-3.4 s reading directly against 5.5-8 s partitioning first."""
    if path.suffix.lower() not in PARQUET:
        return False
    meta = con.execute(
        "SELECT stats_min_value, stats_max_value FROM parquet_metadata("
        f"{quote_literal(str(path))}) WHERE path_in_schema = {quote_literal(cols.host)}"
    ).fetchall()
    types = con.execute(f"SELECT typeof({quote_ident(cols.host)}) FROM {reader(path)} "
                        "LIMIT 1").fetchall()
    if not meta or not types or types[0][0] != "VARCHAR" \
            or any(lo is None or hi is None for lo, hi in meta):
        return False
    read = sum(1 for h in hosts for lo, hi in meta if lo <= h <= hi)
    return read <= 3 * len(meta)


def _check(path: Path, row: tuple[Any, ...], names: list[str]) -> None:
    """The first bad column, as one line."""
    total, empty_host = row[0], row[1]
    if total == 0:
        raise InvalidInput(f"{path}: no rows", "pass a file with data rows")
    if empty_host:
        raise InvalidInput(f"{path}: column 'host' is empty in {empty_host} row(s)",
                           "every row needs a host name")
    for name, bad in zip(names, row[2:], strict=False):
        if bad:
            what = "a time" if name == "t" else "a number"
            raise InvalidInput(f"{path}: column '{name}' has {bad} row(s) that are not "
                               f"{what}", "fix or drop those rows")


def scale_of(magnitude: float) -> float:
    for limit, scale in ((1e11, 1.0), (1e14, 1e-3), (1e17, 1e-6)):
        if magnitude < limit:
            return scale
    return 1e-9


def scan(con: Any, path: Path, cols: Columns) -> FileStats:
    """One pass over the file: every value checked, rows per host, time range and
    scale. Where the smallest and largest |t| fall in one magnitude class the scale is
    the loader's exactly; otherwise it is read from an approximate median."""
    nums = _numbers(cols)
    t = raw_time(cols)
    bad = [f"count(*) FILTER (WHERE NOT coalesce(isfinite({t}), false))",
           *(f"count(*) FILTER (WHERE NOT coalesce(isfinite({_num(c)}), false))"
             for c in nums.values())]
    sql = (f"SELECT CAST({quote_ident(cols.host)} AS VARCHAR) AS h, count(*) AS n, "
           f"min({t}), max({t}), min(abs({t})), max(abs({t})), {', '.join(bad)} "
           f"FROM {reader(path)} GROUP BY 1")
    groups = con.execute(sql).fetchall()
    total = sum(int(g[1]) for g in groups)
    empty = sum(int(g[1]) for g in groups if g[0] is None)
    sums = [sum(int(g[6 + j]) for g in groups) for j in range(len(bad))]
    _check(path, (total, empty, *sums), ["t", *nums])
    lo, hi = min(float(g[4]) for g in groups), max(float(g[5]) for g in groups)
    scale = 1.0
    if cols.t_type not in TIMES:
        scale = scale_of(lo)
        if scale_of(hi) != scale:
            scale = scale_of(float(con.execute(
                f"SELECT approx_quantile(abs({t}), 0.5) FROM {reader(path)}").fetchall()[0][0]))
    rows = {str(g[0]): int(g[1]) for g in groups}
    return FileStats(rows, scale, min(float(g[2]) for g in groups) * scale,
                     max(float(g[3]) for g in groups) * scale,
                     clustered(con, path, cols, list(rows)))


def canonical(path: Path, cols: Columns, stats: FileStats, hostmap: str | None,
              host: str | None = None) -> str:
    """SELECT h (the log's host code, via `hostmap`: other hosts are left out), t (epoch
    seconds), ctr, and x: new-flow drops per second or the cumulative drop counter
    (`Columns.drops` says which), in file order. With `host` instead of `hostmap`: that
    host's rows only (t, ctr, x), a filter Parquet's row-group statistics can skip by."""
    t = raw_time(cols) if stats.scale == 1.0 else f"({raw_time(cols)}) * {double(stats.scale)}"
    ctr = _num(cols.ctr) if cols.ctr is not None else (
        f"CASE WHEN {_num(str(cols.max))} > 0 THEN {_num(str(cols.count))} / "
        f"{_num(str(cols.max))} ELSE 0.0 END")
    x = _num(cols.nfd) if cols.nfd is not None else _num(str(cols.drops))
    if host is not None:
        return (f"SELECT {t} AS t, {ctr} AS ctr, {x} AS x FROM {reader(path)} "
                f"WHERE {quote_ident(cols.host)} = {quote_literal(host)}")
    return (f"SELECT m.code AS h, {t} AS t, {ctr} AS ctr, {x} AS x "
            f"FROM {reader(path)} AS src JOIN {hostmap} AS m "
            f"ON m.name = CAST(src.{quote_ident(cols.host)} AS VARCHAR)")
