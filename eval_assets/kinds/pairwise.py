"""``pairwise``: the candidate's answer to an open-ended prompt judged head to head against production's (or the
suite's reference answer), by the ``judge`` resource, in both orders (stage ``judge_verdicts/<suite>``).

* Answers: generation through the prediction cache (the ``generation`` request), so both sides' answers are
  cached per item; production's are read from its ``predictions`` rows for the suite, never regenerated.
* Opponent: the current production's answer; for production itself, or before there is one, the suite's reference
  answer where it has one. A prompt with neither is left out and counted (``no_opponent``); a run with no
  opponent at all says so plainly and scores nothing.
* Score: per prompt, the two orders combined (a win only when both agree, else a tie; an error in either order
  excludes the prompt and counts it, feeding ``error_rate``), win-rate with ties as half. CI: the prompt is the
  resampling unit (both orders of one prompt are combined into one outcome first); Wilson when every outcome is a
  win or a loss, else a seeded percentile bootstrap over prompts.
* The score already is a comparison with production, so the kind is ``head_to_head``: no paired comparison
  asset and no ``no_regression_vs_production`` rule; ``judge_win_rate`` decides instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from eval_assets.human_eval import HumanAgreement, judge_human_agreement, read_labelled
from eval_assets.judge import (
    OUTCOME_SCORE,
    RUBRIC,
    RUBRIC_VERSION,
    JudgeCache,
    JudgeNotIndependentError,
    Pair,
    ValidationStore,
    check_independence,
    diagnose,
    judge_pairs,
    prompt_outcomes,
    rubric_hash,
)
from eval_assets.kinds._records import RecordError, check_format, item_id, render, unique_ids, value
from eval_assets.kinds._registry import register_kind, register_scorer
from eval_assets.kinds._requests import GENERATION, decode_generation
from eval_assets.kinds._scoring import item_scores_frame
from eval_assets.kinds._types import (
    ItemScore,
    NoParams,
    RecordItems,
    Records,
    Scorer,
    ScorerEntry,
    Stage,
    StageEnv,
    StageResult,
    SuiteKind,
    SuiteScores,
)
from eval_assets.suites.items import GenerationItem, Item
from resources.table_location import TableLocation

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec

#: Bump when the judge_verdicts table's columns or how verdicts are produced change (enters the code version).
STAGE_VERSION = f"j2-r{RUBRIC_VERSION}"
VERDICTS_TABLE = "judge_verdicts"
REFERENCE = "reference"

VERDICT_SCHEMA = pl.Schema(
    {
        "checkpoint": pl.String,
        "suite": pl.String,
        "item_id": pl.String,
        "category": pl.String,
        "order": pl.String,
        "opponent": pl.String,
        "opponent_model_hash": pl.String,
        "model_hash": pl.String,
        "verdict": pl.String,
        "position": pl.String,
        "rationale": pl.String,
        "input_tokens": pl.Int64,
        "output_tokens": pl.Int64,
        "cost_usd": pl.Float64,
        "latency_s": pl.Float64,
        "attempts": pl.Int64,
        "cached": pl.Boolean,
        "candidate_length": pl.Int64,
        "opponent_length": pl.Int64,
        "judge_id": pl.String,
        "judge_version": pl.String,
        "rubric_hash": pl.String,
        "production": pl.String,
        "production_model_hash": pl.String,
        "judge_kappa": pl.Float64,
        "human_kappa": pl.Float64,
        "human_labelled": pl.Int64,
        "judge_validation": pl.String,
        "self_preference_risk": pl.Boolean,
        "independence": pl.String,
        "no_opponent": pl.Int64,
    }
)


# -- items ---------------------------------------------------------------------------------------------------
class PairwiseFields(BaseModel):
    """``data.fields`` of a pairwise suite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(default=None, description="a column of unique item ids (default: the row number)")
    question: str = Field(description="the prompt column ({question} in templates)")
    category: str | None = Field(default=None, description="a column naming each prompt's category")
    reference: str | None = Field(default=None, description="a column of reference answers (the opponent when "
                                  "there is no production); rows may leave it empty")  # fmt: skip


def _check(spec: SuiteSpec, fields: PairwiseFields) -> None:
    check_format(("template", "format"), spec.template.format)


def build_pairwise_items(spec: SuiteSpec, fields: PairwiseFields, records: Records) -> list[Item]:
    fmt = spec.template.format or "{question}"
    items: list[Item] = []
    places: list[str] = []
    for i, row in enumerate(records.rows):
        where = records.where(i)
        question = str(value(row, fields.question, "question", where)).strip()
        variables = {str(k): ("" if v is None else v) for k, v in row.items()} | {"question": question}
        prompt = render(fmt, variables, where, "format")
        reference = ""
        if fields.reference is not None:
            reference = str(value(row, fields.reference, "reference", where, required=False) or "").strip()
        category = str(value(row, fields.category, "category", where)).strip() if fields.category else ""
        messages = (*((("system", spec.template.system),) if spec.template.system else ()), ("user", prompt))
        iid = item_id(row, fields, i, where)  # type: ignore[arg-type]
        items.append(
            GenerationItem(iid, messages, reference, meta={"category": category, "question": prompt})
        )
        places.append(where)
    if not items:
        raise RecordError("a pairwise suite needs at least one prompt")
    unique_ids([item.item_id for item in items], places)
    return items


def pairwise_item(item_id_: str, question: str, reference: str = "", category: str = "") -> GenerationItem:
    """A pairwise item for loaders with their own prompts (MT-Bench)."""
    return GenerationItem(
        item_id_, (("user", question),), reference, meta={"category": category, "question": question}
    )


# -- the stage -----------------------------------------------------------------------------------------------
def judge_local_dir(tables: Any, name: str) -> Path:
    """A local folder for the judge's caches (model copies, verdicts, validations): under the results tables when
    they are local, else under the user cache (object storage: the caches stay on this machine)."""
    try:
        return Path(tables.local_path if hasattr(tables, "local_path") else tables) / name
    except Exception:
        return Path.home() / ".cache" / "evalgate" / name


def _local_dir(env: StageEnv, name: str) -> Path:
    return judge_local_dir(env.tables, name)


def _human_agreement(env: StageEnv, suite: str, judge_id: str, rubric: str) -> HumanAgreement:
    """This judge's agreement with the people who labelled this suite's pairs (any checkpoint so far)."""
    labels, verdicts = read_labelled(TableLocation.of(env.tables), VERDICTS_TABLE)
    return judge_human_agreement(labels, verdicts, suite=suite, judge_id=judge_id, rubric_hash=rubric)


def _answers(frame: pl.DataFrame, items: Mapping[str, GenerationItem]) -> dict[str, str]:
    return {
        iid: decode_generation(items[iid], output).text
        for iid, output in frame.select("item_id", "output").iter_rows()
        if iid in items
    }


def production_answers(
    spec: SuiteSpec, env: StageEnv, candidate: pl.DataFrame, items: Mapping[str, GenerationItem]
) -> tuple[dict[str, str], str | None]:
    """Production's cached answers on the suite (empty with a note when there are none). Production's rows must be
    its weights' and made under the candidate's sampling settings, else the answers are not comparable."""
    from resources.results_store import ResultsStore

    assert env.production is not None
    name, model_hash = env.production
    rows = ResultsStore(env.tables).read("predictions", checkpoint=name, suite=spec.name)
    if rows.height == 0:
        return (
            {},
            f"production {name} has no predictions on {spec.name} (evaluate it: `evalgate evaluate {name}`)",
        )
    hashes = set(rows["model_hash"].unique().to_list())
    if hashes != {model_hash}:
        raise ValueError(
            f"{spec.name}: production {name}'s cached answers were made by weights {sorted(hashes)}, production is "
            f"{model_hash}; re-evaluate production (`evalgate evaluate {name}`)"
        )
    if candidate.height and set(rows["sampling_hash"].unique().to_list()) != set(
        candidate["sampling_hash"].unique().to_list()
    ):
        raise ValueError(
            f"{spec.name}: production {name}'s answers were generated with other sampling settings than the "
            f"candidate's; re-evaluate production (`evalgate evaluate {name}`) so both sides answer alike"
        )
    return _answers(rows, items), None


def run_judge_verdicts(spec: SuiteSpec, predictions: pl.DataFrame, env: StageEnv) -> StageResult:
    """Every prompt judged in both orders against its opponent, through the judge cache."""
    from eval_assets.suites.loaders import load_all_items

    started = time.perf_counter()
    items = {i.item_id: i for i in load_all_items(spec, env.data_root) if isinstance(i, GenerationItem)}
    candidate = _answers(predictions, items)
    candidate_hash = str(predictions["model_hash"][0]) if predictions.height else ""
    production = env.production if env.production and env.production[0] != env.checkpoint else None
    notes: list[str] = []
    opponent_answers: dict[str, str] = {}
    if production is not None:
        opponent_answers, note = production_answers(spec, env, predictions, items)
        if note:
            notes.append(note)
    opponent_name = production[0] if production is not None and opponent_answers else REFERENCE
    if opponent_name == REFERENCE:
        opponent_answers = {iid: items[iid].gold for iid in candidate if items[iid].gold}
        why = (
            "this checkpoint is production"
            if env.production and env.production[0] == env.checkpoint
            else ("there is no production checkpoint" if env.production is None else notes[-1])
        )
        notes.append(f"opponent: the suite's reference answers ({why})")
    judge_resource = env.resources["judge"]
    backend = judge_resource.open(env.data_root)
    identity = backend.identity
    sides: dict[str, tuple[str, str | None]] = {"candidate": (env.checkpoint, candidate_hash)}
    if env.production is not None:
        sides["production"] = env.production
    try:
        independence = check_independence(identity, sides=sides)
    except JudgeNotIndependentError as exc:
        raise JudgeNotIndependentError(f"{spec.name}: {exc}") from None
    pairs = [Pair(iid, items[iid].meta.get("question", ""), text, opponent_answers[iid])
             for iid, text in sorted(candidate.items()) if iid in opponent_answers]  # fmt: skip
    no_opponent = len(candidate) - len(pairs)
    if not pairs:
        notes.append(f"nothing to compare against: no production answers and no reference answers for the "
                     f"{len(candidate)} prompts of {spec.name}; no verdict was made")  # fmt: skip
        env.log(f"{spec.name}: {notes[-1]}")
    cache = JudgeCache(_local_dir(env, "judge_cache") / "verdicts.sqlite")
    try:
        judgements = judge_pairs(
            backend, pairs, cache, max_tokens=judge_resource.max_tokens,
            max_parse_retries=judge_resource.max_parse_retries, report_as=(env.checkpoint, spec.name),
        )  # fmt: skip
    finally:
        cache.close()
    rubric = rubric_hash(RUBRIC)
    validation = ValidationStore(_local_dir(env, "judge_validation")).get(identity, rubric)
    kappa = validation.get("kappa") if validation else None
    validation_note = (
        f"kappa {kappa:.3f} on {validation['dataset']} ({validation['n_labelled']} pairs)" if validation and kappa is not None
        else "no validation on record for this judge and rubric (materialize judge_validation)"
    )  # fmt: skip
    humans = _human_agreement(env, spec.name, identity.judge_id, rubric)
    validation_note += f"; {humans.describe()}"
    fixed = {
        "checkpoint": env.checkpoint, "suite": spec.name, "opponent": opponent_name,
        "opponent_model_hash": production[1] if opponent_name != REFERENCE and production else REFERENCE,
        "model_hash": candidate_hash, "judge_id": identity.judge_id, "judge_version": identity.version,
        "rubric_hash": rubric, "production": env.production[0] if env.production else None,
        "production_model_hash": env.production[1] if env.production else None, "judge_kappa": kappa,
        "human_kappa": humans.kappa, "human_labelled": humans.n, "judge_validation": validation_note,
        "self_preference_risk": independence.self_preference_risk,
        "independence": independence.note, "no_opponent": no_opponent,
    }  # fmt: skip
    rows = [
        fixed
        | {
            "item_id": j.item_id,
            "category": items[j.item_id].meta.get("category", ""),
            "order": j.order,
            "verdict": j.verdict,
            "position": j.position,
            "rationale": j.rationale,
            "input_tokens": j.input_tokens,
            "output_tokens": j.output_tokens,
            "cost_usd": j.cost_usd,
            "latency_s": j.latency_s,
            "attempts": j.attempts,
            "cached": j.cached,
            "candidate_length": j.candidate_length,
            "opponent_length": j.opponent_length,
        }
        for j in judgements
    ]
    frame = pl.DataFrame(rows, schema=VERDICT_SCHEMA) if rows else _empty_frame(fixed)
    diagnostics = diagnose(rows)
    return StageResult(
        frame=frame,
        content=[frame.select("item_id", "order", "verdict", "judge_id", "rubric_hash", "opponent").rows(),
                 kappa, humans.kappa, humans.n],
        metadata={
            "judge": identity.judge_id, "judge_version": identity.version, "rubric_hash": rubric,
            "opponent": opponent_name, "judgements": len(judgements),
            "cached": sum(1 for j in judgements if j.cached), "errors": sum(1 for j in judgements if j.verdict == "error"),
            "cost_usd": round(sum(j.cost_usd for j in judgements), 6), "validation": validation_note,
            "independence": independence.note, "notes": notes, "diagnostics": diagnostics.as_dict(),
            "wall_seconds": round(time.perf_counter() - started, 3),
        },
    )  # fmt: skip


def _empty_frame(fixed: Mapping[str, Any]) -> pl.DataFrame:
    """No verdict: one placeholder row keeps the run's facts (opponent, judge, notes) readable downstream; its
    ``order`` is empty and scoring skips it."""
    row = (
        {name: None for name in VERDICT_SCHEMA}
        | dict(fixed)
        | {"item_id": "", "order": "", "verdict": "none"}
    )
    return pl.DataFrame([row], schema=VERDICT_SCHEMA)


JUDGE_VERDICTS = Stage(
    name=VERDICTS_TABLE,
    version=STAGE_VERSION,
    description="Every {suite} prompt judged in both orders against production's cached answer (or the "
    "reference), by the `judge` resource, cached on (judge id and version, rubric hash, prompt hash, both answers' "
    "hashes, order).",
    run=run_judge_verdicts,
    resources=("judge",),
    reads_production=True,
)


# -- scoring ---------------------------------------------------------------------------------------------------
def _win_rate_scorer(_params: NoParams) -> Scorer[Any, Any]:
    def score(_item: object, outcome: str) -> ItemScore:
        return ItemScore(outcome, "", outcome == "candidate", OUTCOME_SCORE[outcome], True)

    return score


WIN_RATE = register_scorer(
    ScorerEntry(
        name="win_rate",
        kinds=frozenset({"pairwise"}),
        build=_win_rate_scorer,
        params=NoParams,
        description="win-rate against production (or the reference) by the judge, both orders, ties as half",
        binary=False,
    )
)


def score_pairwise(spec: SuiteSpec, checkpoint: str, verdicts: pl.DataFrame) -> SuiteScores:
    rows = [r for r in verdicts.to_dicts() if r["order"] in ("ab", "ba")]
    outcomes = [o for o in prompt_outcomes(rows)]
    scored = [o for o in outcomes if o.outcome != "error"]
    scorer = _win_rate_scorer(NoParams())
    scores = [scorer(None, o.outcome) for o in scored]
    scores = [ItemScore(f"ab={o.ab} ba={o.ba} -> {o.outcome}", s.gold, s.correct, s.score, s.parsed)
              for o, s in zip(scored, scores, strict=True)]  # fmt: skip
    diagnostics = diagnose(rows)
    first = verdicts.row(0, named=True) if verdicts.height else {}
    ties = any(o.outcome == "tie" for o in scored)
    details: dict[str, Any] = {
        "ci_resampling_unit": "prompt (both orders combined into one outcome per prompt first); Wilson when every "
        "outcome is a win or a loss, else a seeded percentile bootstrap over prompts",
        **diagnostics.as_dict(),
        "cost_usd": float(verdicts["cost_usd"].fill_null(0).sum()) if verdicts.height else 0.0,
        "input_tokens": int(verdicts["input_tokens"].fill_null(0).sum()) if verdicts.height else 0,
        "output_tokens": int(verdicts["output_tokens"].fill_null(0).sum()) if verdicts.height else 0,
        "cached_judgements": int(verdicts["cached"].fill_null(False).sum()) if verdicts.height else 0,
    }
    for key in ("opponent", "opponent_model_hash", "judge_id", "judge_version", "rubric_hash", "production",
                "production_model_hash", "judge_kappa", "human_kappa", "human_labelled", "judge_validation",
                "self_preference_risk", "independence", "no_opponent"):  # fmt: skip
        details[key] = first.get(key)
    by_category: dict[str, list[float]] = {}
    category = {r["item_id"]: r.get("category") or "" for r in rows}
    for o in scored:
        by_category.setdefault(category.get(o.item_id, ""), []).append(OUTCOME_SCORE[o.outcome])
    details["win_rate_by_category"] = {
        k: round(sum(v) / len(v), 4) for k, v in sorted(by_category.items()) if k
    }
    return SuiteScores(
        item_scores=item_scores_frame(spec.name, checkpoint, [o.item_id for o in scored], scores),
        n_total=len(outcomes),
        errors=len(outcomes) - len(scored),
        binary=not ties,
        metric="win_rate",
        details=details,
    )


def _score(
    spec: SuiteSpec, checkpoint: str, verdicts: pl.DataFrame, _load_items: Callable[[], list[Item]]
) -> SuiteScores:
    return score_pairwise(spec, checkpoint, verdicts)


PAIRWISE_KIND = register_kind(
    SuiteKind(
        name="pairwise",
        description="open-ended answers judged head to head against production's (or a reference) by an LLM judge",
        item_type=GenerationItem,
        request=GENERATION,
        score=_score,
        sampling="required",
        stages=(JUDGE_VERDICTS,),
        records=RecordItems(fields=PairwiseFields, build=build_pairwise_items, check=_check),
        head_to_head=True,
    )
)
