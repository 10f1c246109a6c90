"""``likelihood``: multiple choice by the log-likelihood of each continuation given the context (lm-eval's
``multiple_choice``). Items load from a built-in loader, ``lm_eval``, or a user's records (question, choices,
gold as an index, a label or the choice text)."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from eval_assets.kinds._errors import SpecFieldError
from eval_assets.kinds._records import (
    BaseFields,
    RecordError,
    base_variables,
    check_common,
    fewshot_indices,
    item_format,
    item_id,
    join_text,
    pool_ids,
    render,
    unique_ids,
    value,
)
from eval_assets.kinds._registry import register_kind
from eval_assets.kinds._requests import LIKELIHOOD
from eval_assets.kinds._scoring import per_item_scores
from eval_assets.kinds._types import RecordItems, Records, SuiteKind
from eval_assets.suites.items import Item, LikelihoodItem

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec


class ChoiceFields(BaseFields):
    """``data.fields`` of a multiple-choice suite."""

    choices: str | list[str] = Field(
        description="a column holding the list of choices, or (CSV) the choice columns in order"
    )
    gold_format: Literal["index", "label", "text"] = Field(
        default="index",
        description="index: 0-based position; label: one of the labels; text: the choice's text",
    )
    labels: str | list[str] | None = Field(
        default=None,
        description="a column of per-row labels, or one list for every row (default: A, B, C, ...)",
    )


def _choices(row: Mapping[str, Any], fields: ChoiceFields, where: str) -> list[str]:
    if isinstance(fields.choices, list):
        return [str(value(row, column, "choices", where)).strip() for column in fields.choices]
    found = value(row, fields.choices, "choices", where)
    if isinstance(found, str) or not hasattr(found, "__iter__"):
        raise RecordError(
            f"{where}: field `{fields.choices}` (`data.fields.choices`) holds {type(found).__name__} {str(found)[:40]!r}, "
            "not a list; in a CSV, name the choice columns as a list: `choices: [A, B, C, D]`"
        )
    choices = [str(choice).strip() for choice in found]
    if len(choices) < 2:
        raise RecordError(
            f"{where}: field `{fields.choices}` has {len(choices)} choice(s); at least 2 are needed"
        )
    return choices


def default_labels(n: int) -> list[str]:
    return list(string.ascii_uppercase[:n]) if n <= 26 else [str(i + 1) for i in range(n)]


def _labels(row: Mapping[str, Any], fields: ChoiceFields, n: int, where: str) -> list[str]:
    if fields.labels is None:
        return default_labels(n)
    if isinstance(fields.labels, list):
        labels = [str(label) for label in fields.labels]
    else:
        labels = [str(label).strip() for label in value(row, fields.labels, "labels", where)]
    if len(labels) != n:
        raise RecordError(f"{where}: {len(labels)} labels for {n} choices (`data.fields.labels`)")
    return labels


def _as_index(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() else None
    try:
        return int(str(raw).strip())
    except ValueError:
        return None


def _gold(
    row: Mapping[str, Any], fields: ChoiceFields, choices: list[str], labels: list[str], where: str
) -> int:
    raw = value(row, fields.gold, "gold", where)
    if fields.gold_format == "index":
        index = _as_index(raw)
        if index is None or not 0 <= index < len(choices):
            raise RecordError(
                f"{where}: gold {raw!r} in `{fields.gold}` is not a 0-based choice index below {len(choices)}; "
                "for labels such as 'B' set `data.fields.gold_format: label`"
            )
        return index
    pool = labels if fields.gold_format == "label" else choices
    text = str(raw).strip()
    if text not in pool:
        raise RecordError(
            f"{where}: gold {text!r} in `{fields.gold}` is not one of the {fields.gold_format}s {pool} "
            f"(`data.fields.gold_format: {fields.gold_format}`)"
        )
    return pool.index(text)


def _prepared(row: Mapping[str, Any], fields: ChoiceFields, where: str) -> tuple[dict[str, Any], int]:
    variables = base_variables(row, fields, where)
    choices = _choices(row, fields, where)
    labels = _labels(row, fields, len(choices), where)
    gold = _gold(row, fields, choices, labels, where)
    variables.update(
        choices=choices,
        labels=labels,
        choice_lines="\n".join(f"{label}. {choice}" for label, choice in zip(labels, choices, strict=True)),
        answer=choices[gold],
        label=labels[gold],
    )
    return variables, gold


def _continuation(spec: SuiteSpec, variables: Mapping[str, Any], index: int, where: str) -> str:
    choice_vars = {
        **variables,
        "choice": variables["choices"][index],
        "label": variables["labels"][index],
        "index": index,
    }
    return render(spec.template.choice_format, choice_vars, where, "choice_format")


def build_choice_items(spec: SuiteSpec, fields: ChoiceFields, records: Records) -> list[Item]:
    """One :class:`LikelihoodItem` per row: preamble, few-shot examples (prompt + gold continuation), the row's
    prompt; continuations rendered by ``template.choice_format``."""
    fmt = item_format(spec, fields)
    pool = [_prepared(row, fields, records.fewshot_where(i)) for i, row in enumerate(records.fewshot)]
    shot_ids = pool_ids(records.fewshot, fields, records.fewshot_where)
    shot_texts: list[str] = []
    for i, (variables, gold) in enumerate(pool):
        where = records.fewshot_where(i)
        target = (
            render(spec.template.target_format, variables, where, "target_format")
            if spec.template.target_format is not None
            else _continuation(spec, variables, gold, where)
        )
        shot_texts.append(render(fmt, variables, where, "format") + target)
    items: list[Item] = []
    places: list[str] = []
    for i, row in enumerate(records.rows):
        where = records.where(i)
        variables, gold = _prepared(row, fields, where)
        iid = item_id(row, fields, i, where)
        shots = [shot_texts[j] for j in fewshot_indices(spec.template, shot_ids, iid, where)]
        context = join_text(spec.template, shots, render(fmt, variables, where, "format"))
        continuations = tuple(
            _continuation(spec, variables, j, where) for j in range(len(variables["choices"]))
        )
        items.append(LikelihoodItem(item_id=iid, context=context, continuations=continuations, gold=gold))
        places.append(where)
    unique_ids([item.item_id for item in items], places)
    return items


def check_choice_fields(spec: SuiteSpec, fields: ChoiceFields) -> None:
    check_common(spec, fields)
    if isinstance(fields.choices, list) and len(fields.choices) < 2:
        raise SpecFieldError(("data", "fields", "choices"), "name at least two choice columns")
    if (
        isinstance(fields.labels, list)
        and isinstance(fields.choices, list)
        and len(fields.labels) != len(fields.choices)
    ):
        raise SpecFieldError(
            ("data", "fields", "labels"),
            f"{len(fields.labels)} labels for {len(fields.choices)} choice columns",
        )
    if spec.template.chat:
        raise SpecFieldError(
            ("template", "chat"), "likelihood suites score plain text; chat templates apply to generation"
        )


LIKELIHOOD_KIND = register_kind(
    SuiteKind(
        name="likelihood",
        description="multiple choice by the log-likelihood of each continuation",
        item_type=LikelihoodItem,
        request=LIKELIHOOD,
        score=per_item_scores,
        sampling="forbidden",
        records=RecordItems(fields=ChoiceFields, build=build_choice_items, check=check_choice_fields),
    )
)
