"""What a rater sees for a sampled item: the prompt, the answer(s), the reference. Pure over frames and items."""

from __future__ import annotations

import json
from collections.abc import Mapping

import polars as pl

from eval_assets.suites.items import GenerationItem, Item, LikelihoodItem

CONTENT_COLUMNS = {
    "prompt": pl.String(),
    "answer": pl.String(),
    "reference": pl.String(),
    "opponent": pl.String(),
    "opponent_answer": pl.String(),
}


def prompt_text(item: Item) -> str:
    """The item's own prompt: the last user turn of a chat item (few-shot turns left out), else the context."""
    if isinstance(item, LikelihoodItem):
        return item.context
    if isinstance(item, GenerationItem):
        users = [text for role, text in item.messages if role == "user"]
        return users[-1] if users else "\n".join(text for _, text in item.messages)
    raise TypeError(f"unknown item type {type(item).__name__}")


def output_text(output: str | None) -> str | None:
    """The text of a stored prediction output (``{"text": …}``), or the raw JSON for other outputs."""
    if output is None:
        return None
    try:
        decoded = json.loads(output)
    except json.JSONDecodeError:
        return output
    if isinstance(decoded, dict) and isinstance(decoded.get("text"), str):
        return str(decoded["text"])
    return output


def _outputs(predictions: pl.DataFrame) -> dict[tuple[str, str, str], str]:
    if predictions.height == 0:
        return {}
    return {
        (str(c), str(s), str(i)): str(o)
        for c, s, i, o in predictions.select("checkpoint", "suite", "item_id", "output").iter_rows()
    }


#: The opponent the pairwise stage names when it judged against the item's reference answer.
REFERENCE_OPPONENT = "reference"


def _opponent_answer(
    outputs: Mapping[tuple[str, str, str], str], opponent: str | None, key: tuple[str, str], item: Item | None
) -> str | None:
    if not opponent:
        return None
    if opponent == REFERENCE_OPPONENT and isinstance(item, GenerationItem):
        return item.gold
    return output_text(outputs.get((opponent, *key)))


def attach_content(
    sample: pl.DataFrame,
    *,
    items: Mapping[tuple[str, str], Item],
    predictions: pl.DataFrame,
    item_scores: pl.DataFrame,
    opponents: Mapping[tuple[str, str], str] | None = None,
) -> pl.DataFrame:
    """``sample`` with :data:`CONTENT_COLUMNS`: ``items`` by (suite, item_id); ``predictions`` of the
    checkpoint and of every opponent; ``opponents`` by (suite, item_id) for pairwise items."""
    outputs = _outputs(predictions)
    golds = {}
    if item_scores.height:
        golds = {
            (str(s), str(i)): g for s, i, g in item_scores.select("suite", "item_id", "gold").iter_rows()
        }
    rows = []
    for row in sample.iter_rows(named=True):
        key = (row["suite"], row["item_id"])
        item = items.get(key)
        opponent = (opponents or {}).get(key)
        reference = golds.get(key)
        if reference is None and isinstance(item, GenerationItem):
            reference = item.gold
        rows.append(row | {
            "prompt": prompt_text(item) if item is not None else None,
            "answer": output_text(outputs.get((row["checkpoint"], *key))),
            "reference": reference,
            "opponent": opponent,
            "opponent_answer": _opponent_answer(outputs, opponent, key, item),
        })  # fmt: skip
    return pl.DataFrame(rows, schema=pl.Schema({**dict(sample.schema), **CONTENT_COLUMNS}))
