"""Write the per-order pressure features (features.py) where the desk asked: Parquet by a
.parquet/.pq suffix (needs pyarrow), CSV otherwise. The one module here that writes a
table; failures are one line, nothing half-written is left claiming to be complete."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ctdrill.errors import InvalidInput

PARQUET = (".parquet", ".pq")


def has_pyarrow() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def features_format(path: Path) -> str:
    """parquet or csv, by suffix; Parquet without pyarrow is refused before any work."""
    if path.suffix.lower() not in PARQUET:
        return "csv"
    if not has_pyarrow():
        raise InvalidInput(f"--features {path}: writing Parquet needs pyarrow, which is not "
                           "installed", "pip install pyarrow, or name the file .csv")
    return "parquet"


def write_features(frame: Any, path: Path) -> str:
    """Write `frame` to `path` (its parent created); returns the format written."""
    fmt = features_format(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write --features {path}: {exc.strerror or exc}",
                           "pass a writable path") from exc
    return fmt
