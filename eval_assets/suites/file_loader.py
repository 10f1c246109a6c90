"""``loader: file``: a task-specific suite from a local data file, no code. The kind renders the rows (multiple
choice by likelihood, or generation scored by a text scorer); this loader reads and pins them.

.. code-block:: yaml

    loader: file
    data:
      file: {path: items.jsonl, sha256: <hex>}      # JSONL, CSV, Parquet or Arrow; relative to this spec
      fewshot_file: {path: train.jsonl, sha256: <hex>}  # or: split_column + split + fewshot_split
      fields: {question: question, choices: choices, gold: answer}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eval_assets.kinds._errors import SpecFieldError, rerooted
from eval_assets.kinds._records import RecordError
from eval_assets.kinds._registry import KINDS, get_kind, register_loader
from eval_assets.kinds._types import LoadContext, Loader, Records
from eval_assets.suites.files import DataFile, DataFileError, Table, read_table, split_of
from eval_assets.suites.items import Item

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec


class SuiteDataError(ValueError):
    """A user suite's data cannot become items: the message names the file (and line) and the spec field."""


class FileOptions(BaseModel):
    """The ``data`` section of a ``file`` suite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: DataFile = Field(description="the items to evaluate")
    fewshot_file: DataFile | None = Field(default=None, description="the few-shot pool, a second file")
    split_column: str | None = Field(default=None, description="a column naming each row's split")
    split: str | None = Field(default=None, description="with split_column: the split to evaluate")
    fewshot_split: str | None = Field(default=None, description="with split_column: the few-shot split")
    fields: dict[str, Any] = Field(description="which columns hold the question, choices, gold answer ...")


def check(spec: SuiteSpec, options: FileOptions | None) -> None:
    assert options is not None
    kind = get_kind(spec.kind)
    if kind.records is None:
        record_kinds = [name for name in KINDS.names() if KINDS.get(name).records is not None]
        raise SpecFieldError(
            ("loader",),
            f"kind {spec.kind} does not load from records; loader `file` feeds {', '.join(record_kinds)}",
        )
    if options.split_column is None and (options.split is not None or options.fewshot_split is not None):
        raise SpecFieldError(("data", "split_column"), "`split` and `fewshot_split` need `split_column`")
    if options.split_column is not None and options.split is None:
        raise SpecFieldError(("data", "split"), "with `split_column`, name the split to evaluate")
    if options.fewshot_file is not None and options.fewshot_split is not None:
        raise SpecFieldError(
            ("data", "fewshot_split"), "give the few-shot pool as `fewshot_file` or `fewshot_split`, not both"
        )
    if options.fewshot_split is not None and options.fewshot_split == options.split:
        raise SpecFieldError(
            ("data", "fewshot_split"), "few-shot examples must come from another split than the items"
        )
    has_pool = options.fewshot_file is not None or options.fewshot_split is not None
    if spec.template.num_fewshot > 0 and not has_pool:
        raise SpecFieldError(
            ("template", "num_fewshot"),
            "few-shot examples need a pool: set `data.fewshot_file` or `data.fewshot_split`",
        )
    try:
        fields = kind.records.fields.model_validate(options.fields)
    except ValidationError as exc:
        raise rerooted(("data", "fields"), exc) from None
    if kind.records.check is not None:
        kind.records.check(spec, fields)


def _tables(spec: SuiteSpec, options: FileOptions, context: LoadContext) -> tuple[Table, Table | None]:
    table = read_table(options.file, context, field="data.file", spec=spec.where)
    if options.split_column is not None:
        assert options.split is not None
        items = split_of(table, options.split_column, options.split, field="data.split", spec=spec.where)
        pool = (
            split_of(
                table,
                options.split_column,
                options.fewshot_split,
                field="data.fewshot_split",
                spec=spec.where,
            )
            if options.fewshot_split is not None
            else None
        )
        return items, pool
    if options.fewshot_file is not None:
        return table, read_table(options.fewshot_file, context, field="data.fewshot_file", spec=spec.where)
    return table, None


def load(spec: SuiteSpec, options: FileOptions | None, context: LoadContext) -> list[Item]:
    """The file's rows rendered by the kind.

    Raises:
        SuiteDataError: a missing or tampered file (sha256), an unreadable row, a missing field (``file:line``).
    """
    assert options is not None
    kind = get_kind(spec.kind)
    assert kind.records is not None
    try:
        items, pool = _tables(spec, options, context)
        records = Records(
            rows=items.rows,
            where=items.where,
            fewshot=pool.rows if pool is not None else (),
            fewshot_where=pool.where if pool is not None else (lambda index: f"few-shot row {index}"),
            columns=items.columns,
        )
        return kind.records.build(spec, kind.records.fields.model_validate(options.fields), records)
    except (DataFileError, RecordError) as exc:
        raise SuiteDataError(str(exc)) from exc


LOADER = register_loader(
    Loader(
        name="file",
        kinds=lambda kind: kind in KINDS and KINDS.get(kind).records is not None,
        load=load,
        description="a local JSONL, CSV, Parquet or Arrow file pinned by sha256, rendered by the kind's template",
        options=FileOptions,
        renders_template=True,
        check=check,
    )
)
