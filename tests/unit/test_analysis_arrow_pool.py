"""Files are read with Arrow on glibc's malloc (its default pool, mimalloc, cost seconds
of system time on a large log), and the default pool is back after, on success or on a
file that cannot be read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from ctdrill.analysis.loaders import read_table, system_pool
from ctdrill.errors import InvalidInput


def test_reading_uses_malloc_and_restores_the_default(tmp_path: Path) -> None:
    before = pa.default_memory_pool().backend_name
    with system_pool():
        assert pa.default_memory_pool().backend_name == "system"
    assert pa.default_memory_pool().backend_name == before
    good, bad = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(good)
    bad.write_bytes(b"not parquet")
    assert read_table(good, "log")["x"].tolist() == [1.0, 2.0]
    with pytest.raises(InvalidInput, match="cannot read"):
        read_table(bad, "log")
    assert pa.default_memory_pool().backend_name == before
