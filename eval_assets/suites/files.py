"""A user's data files: pinned by sha256 in the spec, read in place (JSONL, CSV, Parquet, Arrow), every row
locatable as ``file:line`` in error messages.

A path in a spec is relative to the spec file's directory (or absolute); ``package_path`` names a file inside
the data packages' directory instead, verified against the project's own pins when it has one.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eval_assets.datapkgs import PINNED_FILES, data_file, file_sha256
from eval_assets.kinds._types import LoadContext

Format = Literal["jsonl", "csv", "parquet", "arrow"]
SUFFIX_FORMATS: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".arrow": "arrow",
}


class DataFileError(ValueError):
    """A data file is missing, does not match its pinned hash, or cannot be read; the message names the file,
    the spec field, and what to do."""


class DataFile(BaseModel):
    """One pinned data file (``path`` + ``sha256``, or ``package_path`` inside the data packages)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = Field(default=None, description="relative to the spec file's directory, or absolute")
    package_path: str | None = Field(default=None, description="a file inside the data packages' directory")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="hex sha256 of the file")
    format: Format | None = Field(default=None, description="default: from the file's suffix")

    @model_validator(mode="after")
    def _one_source(self) -> DataFile:
        if (self.path is None) == (self.package_path is None):
            raise ValueError("give exactly one of `path` and `package_path`")
        if self.path is not None and self.sha256 is None:
            raise ValueError(
                "`sha256` is required with `path` (run `sha256sum FILE` and paste the hex digest)"
            )
        if self.package_path is not None and self.sha256 is None and self.package_path not in PINNED_FILES:
            raise ValueError(
                f"`sha256` is required: {self.package_path} is not among the project's pinned files"
            )
        name = self.path or self.package_path or ""
        if self.format is None and Path(name).suffix.lower() not in SUFFIX_FORMATS:
            raise ValueError(
                f"cannot tell the format of {name!r} from its suffix; set `format` ({', '.join(SUFFIX_FORMATS.values())})"
            )
        return self

    @property
    def file_format(self) -> Format:
        return self.format or SUFFIX_FORMATS[Path(self.path or self.package_path or "").suffix.lower()]


def resolve(file: DataFile, context: LoadContext, *, field: str, spec: str) -> Path:
    """The verified path of ``file``: it exists and its sha256 matches the pin.

    Raises:
        DataFileError: naming the file, the spec and the field, and what to do.
    """
    if file.package_path is not None:
        path = context.data_root / file.package_path
        if file.package_path in PINNED_FILES and file.sha256 in (None, PINNED_FILES[file.package_path]):
            try:
                return data_file(file.package_path, context.data_root)
            except Exception as exc:
                raise DataFileError(f"{spec}: field `{field}.package_path`: {exc}") from exc
    else:
        assert file.path is not None
        raw = Path(file.path).expanduser()
        base = context.spec_dir
        if not raw.is_absolute() and base is None:
            raise DataFileError(
                f"{spec}: field `{field}.path` is relative ({file.path}) but the spec was not read from a file; "
                "give an absolute path"
            )
        path = raw if raw.is_absolute() else (base or Path()) / raw
    if not path.is_file():
        where = "the data packages' directory" if file.package_path is not None else "the spec's directory"
        raise DataFileError(f"{path}: no such file (field `{field}` of {spec}; relative to {where})")
    actual = file_sha256(path)
    if actual != file.sha256:
        raise DataFileError(
            f"{path}: sha256 is {actual}, but field `{field}.sha256` of {spec} pins {file.sha256}. If you changed "
            "the data on purpose, put the new hash in the spec and bump the suite's `version`; otherwise restore "
            "the file."
        )
    return path


@dataclass(frozen=True)
class Table:
    """Rows of one data file, and where each came from (``file:line`` or ``file: row N``)."""

    path: Path
    rows: list[dict[str, Any]]
    lines: list[int | None]

    def where(self, index: int) -> str:
        line = self.lines[index]
        return f"{self.path}:{line}" if line is not None else f"{self.path}: row {index + 1}"

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.rows[0]) if self.rows else ()

    def select(self, keep: Callable[[Mapping[str, Any]], bool]) -> Table:
        chosen = [i for i, row in enumerate(self.rows) if keep(row)]
        return Table(self.path, [self.rows[i] for i in chosen], [self.lines[i] for i in chosen])


def _read_jsonl(path: Path) -> Table:
    rows: list[dict[str, Any]] = []
    lines: list[int | None] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFileError(
                    f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(row, dict):
                raise DataFileError(
                    f"{path}:{number}: each line must be a JSON object, got {type(row).__name__}"
                )
            rows.append(row)
            lines.append(number)
    return Table(path, rows, lines)


def _read_csv(path: Path) -> Table:
    rows: list[dict[str, Any]] = []
    lines: list[int | None] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise DataFileError(f"{path}: empty CSV (the first line must name the columns)")
        start = reader.line_num + 1
        for row in reader:
            if None in row:
                raise DataFileError(
                    f"{path}:{start}: more values than the {len(reader.fieldnames)} columns of the header"
                )
            rows.append({key: value for key, value in row.items()})
            lines.append(start)
            start = reader.line_num + 1
    return Table(path, rows, lines)


def _read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:
        raise DataFileError(f"{path}: not a readable Parquet file ({exc})") from exc
    return Table(path, rows, [None] * len(rows))


def _read_arrow(path: Path) -> Table:
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            try:
                table = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                table = pa.ipc.open_file(source).read_all()
    except Exception as exc:
        raise DataFileError(f"{path}: not a readable Arrow IPC file ({exc})") from exc
    rows = table.to_pylist()
    return Table(path, rows, [None] * len(rows))


READERS: dict[Format, Callable[[Path], Table]] = {
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "parquet": _read_parquet,
    "arrow": _read_arrow,
}


def read_table(file: DataFile, context: LoadContext, *, field: str, spec: str) -> Table:
    """The verified file's rows."""
    path = resolve(file, context, field=field, spec=spec)
    table = READERS[file.file_format](path)
    if not table.rows:
        raise DataFileError(f"{path}: no rows (field `{field}` of {spec})")
    return table


def split_of(table: Table, column: str, split: str, *, field: str, spec: str) -> Table:
    """The rows of ``table`` whose ``column`` is ``split``."""
    missing = [i for i, row in enumerate(table.rows) if column not in row]
    if missing:
        raise DataFileError(
            f"{table.where(missing[0])}: missing field `{column}` (named by `data.split_column` of {spec})"
        )
    chosen = table.select(lambda row: str(row[column]) == split)
    if not chosen.rows:
        found = sorted({str(row[column]) for row in table.rows})
        raise DataFileError(
            f"{table.path}: no rows with {column} = {split!r} (field `{field}` of {spec}); splits found: {found}"
        )
    return chosen


def describe_columns(rows: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(sorted(rows[0])) if rows else "(none)"
