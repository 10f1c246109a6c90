"""Rendering a user's records into prompts: field access with row-located errors, format strings, few-shot.

A template is a Python format string over a record's columns plus the canonical names the field map gives
(``question``, ``context``, ``answer``; for multiple choice also ``choices``, ``labels``, ``choice_lines``,
``label``). Errors name the row (``file:line``) and the spec field to fix.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from eval_assets.hashing import sha256_text
from eval_assets.kinds._errors import SpecFieldError

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec, Template

DEFAULT_FORMAT = "Question: {question}\nAnswer:"
DEFAULT_FORMAT_WITH_CONTEXT = "{context}\nQuestion: {question}\nAnswer:"


class RecordError(ValueError):
    """A row of a user's data file cannot become an item; the message names the row and the spec field."""


class BaseFields(BaseModel):
    """Columns every record-based kind reads (``data.fields``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(default=None, description="a column of unique item ids (default: the row number)")
    question: str | None = Field(default=None, description="the question column ({question} in templates)")
    context: str | None = Field(default=None, description="a passage column ({context} in templates)")
    gold: str = Field(description="the column of the reference answer")


def template_fields(template: str) -> list[str]:
    """The top-level names a format string uses (``{choices[0]}`` uses ``choices``)."""
    names = []
    for _, field_name, _, _ in string.Formatter().parse(template):
        if field_name is not None:
            names.append(field_name.split(".")[0].split("[")[0])
    return names


def check_format(loc: tuple[str | int, ...], template: str | None) -> None:
    if template is None:
        return
    try:
        fields = template_fields(template)
    except ValueError as exc:
        raise SpecFieldError(
            loc, f"not a valid format string ({exc}); write literal braces as {{{{ and }}}}"
        ) from None
    if any(name == "" or name.isdigit() for name in fields):
        raise SpecFieldError(loc, "use named fields such as {question}, not positional {} or {0}")


def item_format(spec: SuiteSpec, fields: BaseFields) -> str:
    """The item prompt's format string: the spec's, or the default for the mapped fields."""
    if spec.template.format is not None:
        return spec.template.format
    return DEFAULT_FORMAT_WITH_CONTEXT if fields.context else DEFAULT_FORMAT


def check_common(spec: SuiteSpec, fields: BaseFields) -> None:
    """Parse-time rules shared by the record-based kinds."""
    for name in ("format", "choice_format", "target_format", "preamble"):
        check_format(("template", name), getattr(spec.template, name))
    if spec.template.format is None and fields.question is None:
        raise SpecFieldError(
            ("template", "format"),
            "set `template.format`, or name the question column in `data.fields.question`",
        )


def value(row: Mapping[str, Any], column: str, role: str, where: str, *, required: bool = True) -> Any:
    """``row[column]``, or a :class:`RecordError` naming the row, the column and the spec field."""
    if column not in row:
        raise RecordError(
            f"{where}: missing field `{column}` (named by `data.fields.{role}`); the row has: {', '.join(sorted(row))}"
        )
    found = row[column]
    if required and (found is None or (isinstance(found, str) and not found.strip())):
        raise RecordError(f"{where}: field `{column}` (`data.fields.{role}`) is empty")
    return found


def render(template: str, variables: Mapping[str, Any], where: str, field: str) -> str:
    try:
        return template.format_map(variables)
    except KeyError as exc:
        raise RecordError(
            f"{where}: `template.{field}` uses {{{exc.args[0]}}}, which is neither a column of the row nor a name "
            f"the field map gives; available: {', '.join(sorted(variables))}"
        ) from None
    except (IndexError, AttributeError, ValueError, TypeError) as exc:
        raise RecordError(f"{where}: `template.{field}` cannot be rendered for this row ({exc})") from None


def base_variables(row: Mapping[str, Any], fields: BaseFields, where: str) -> dict[str, Any]:
    """The row's columns plus ``question`` and ``context`` from the field map."""
    variables: dict[str, Any] = {str(k): ("" if v is None else v) for k, v in row.items()}
    if fields.question is not None:
        variables["question"] = str(value(row, fields.question, "question", where)).strip()
    if fields.context is not None:
        variables["context"] = str(value(row, fields.context, "context", where, required=False) or "").strip()
    return variables


def item_id(row: Mapping[str, Any], fields: BaseFields, index: int, where: str) -> str:
    """The id column's value, else the row's position among the evaluated rows."""
    if fields.id is None:
        return str(index)
    return str(value(row, fields.id, "id", where)).strip()


def pool_ids(rows: Sequence[Mapping[str, Any]], fields: BaseFields, where: Callable[[int], str]) -> list[str]:
    """Ids of the few-shot pool: its id column (an example with an item's id is never that item's shot), else
    ids that no item has."""
    if fields.id is None:
        return [f"fewshot-{index}" for index in range(len(rows))]
    return [item_id(row, fields, index, where(index)) for index, row in enumerate(rows)]


def unique_ids(ids: Sequence[str], where: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for item, place in zip(ids, where, strict=True):
        if item in seen:
            raise RecordError(
                f"{place}: item id {item!r} repeats {seen[item]} (ids in `data.fields.id` must be unique)"
            )
        seen[item] = place


def fewshot_indices(template: Template, pool_ids: Sequence[str], target_id: str, where: str) -> list[int]:
    """Which pool rows are the few-shot examples of item ``target_id`` (never the item itself)."""
    k = template.num_fewshot
    if k == 0:
        return []
    candidates = [i for i, pool_id in enumerate(pool_ids) if pool_id != target_id]
    if len(candidates) < k:
        raise RecordError(
            f"{where}: `template.num_fewshot` is {k} but the few-shot pool has {len(candidates)} usable rows"
        )
    if template.fewshot_sampler == "hashed":
        candidates.sort(key=lambda i: sha256_text(f"{target_id}\0{pool_ids[i]}"))
    return candidates[:k]


def join_text(template: Template, shots: Sequence[str], prompt: str) -> str:
    """preamble + shots joined by the separator + the item's prompt (lm-eval's layout)."""
    parts = [*shots, prompt]
    return template.preamble + template.fewshot_separator.join(parts)
