"""Read a split saved by ``datasets.save_to_disk`` (Arrow IPC stream files) without importing `datasets`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa


def read_arrow_rows(split_dir: Path) -> list[dict[str, Any]]:
    files = sorted(split_dir.glob("data-*.arrow"))
    if not files:
        raise FileNotFoundError(f"no data-*.arrow files in {split_dir}")
    rows: list[dict[str, Any]] = []
    for path in files:
        with pa.memory_map(str(path)) as source:
            rows.extend(pa.ipc.open_stream(source).read_all().to_pylist())
    return rows
