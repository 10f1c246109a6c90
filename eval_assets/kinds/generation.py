"""``generation``: free generation scored by a text scorer (exact match, regex, numeric tolerance, contains).
Items load from a built-in loader (GSM8K), ``lm_eval`` (``generate_until`` tasks), or a user's records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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
from eval_assets.kinds._registry import get_scorer, register_kind
from eval_assets.kinds._requests import GENERATION
from eval_assets.kinds._scoring import per_item_scores
from eval_assets.kinds._types import RecordItems, Records, SuiteKind
from eval_assets.suites.items import GenerationItem, Item

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec

DEFAULT_TARGET_FORMAT = " {answer}"


class AnswerFields(BaseFields):
    """``data.fields`` of a generation suite: the prompt's columns and the reference answer's."""


def _prepared(spec: SuiteSpec, row: Mapping[str, Any], fields: AnswerFields, where: str) -> dict[str, Any]:
    variables = base_variables(row, fields, where)
    gold = str(value(row, fields.gold, "gold", where)).strip()
    entry = get_scorer(spec.metric)
    if entry.check_gold is not None:
        try:
            entry.check_gold(spec.scorer_params(), gold)
        except ValueError as exc:
            raise RecordError(f"{where}: field `{fields.gold}` (`data.fields.gold`): {exc}") from None
    variables["answer"] = gold
    return variables


def _messages(spec: SuiteSpec, shots: list[tuple[str, str]], prompt: str) -> tuple[tuple[str, str], ...]:
    """Chat: each shot a user turn and an assistant turn, the preamble opening the first user turn; plain text:
    one user message in lm-eval's layout (preamble, shots joined by the separator, the prompt)."""
    template = spec.template
    messages: list[tuple[str, str]] = [("system", template.system)] if template.system else []
    if not template.chat:
        messages.append(("user", join_text(template, [q + a for q, a in shots], prompt)))
        return tuple(messages)
    turns = [*shots, (prompt, "")]
    for index, (question, answer) in enumerate(turns):
        messages.append(("user", (template.preamble if index == 0 else "") + question))
        if answer:
            messages.append(("assistant", answer.strip()))
    return tuple(messages)


def build_answer_items(spec: SuiteSpec, fields: AnswerFields, records: Records) -> list[Item]:
    """One :class:`GenerationItem` per row, its gold the reference answer (checked by the metric's scorer)."""
    fmt = item_format(spec, fields)
    target_format = spec.template.target_format or DEFAULT_TARGET_FORMAT
    shot_ids = pool_ids(records.fewshot, fields, records.fewshot_where)
    pool_shots: list[tuple[str, str]] = []
    for i, row in enumerate(records.fewshot):
        where = records.fewshot_where(i)
        variables = _prepared(spec, row, fields, where)
        pool_shots.append(
            (
                render(fmt, variables, where, "format"),
                render(target_format, variables, where, "target_format"),
            )
        )
    items: list[Item] = []
    places: list[str] = []
    for i, row in enumerate(records.rows):
        where = records.where(i)
        variables = _prepared(spec, row, fields, where)
        iid = item_id(row, fields, i, where)
        shots = [pool_shots[j] for j in fewshot_indices(spec.template, shot_ids, iid, where)]
        messages = _messages(spec, shots, render(fmt, variables, where, "format"))
        items.append(GenerationItem(item_id=iid, messages=messages, gold=variables["answer"]))
        places.append(where)
    unique_ids([item.item_id for item in items], places)
    return items


GENERATION_KIND = register_kind(
    SuiteKind(
        name="generation",
        description="free generation scored by a text scorer",
        item_type=GenerationItem,
        request=GENERATION,
        score=per_item_scores,
        sampling="required",
        records=RecordItems(fields=AnswerFields, build=build_answer_items, check=check_common),
    )
)
