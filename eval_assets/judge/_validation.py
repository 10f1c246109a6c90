"""Validation before trust: the judge's picks on a human-labelled pairwise set, both orders, against the humans'
picks; agreement and Cohen's kappa. Results are stored per (judge id, judge version, rubric hash, data set hash)
so a changed judge or rubric is validated again, and the gate reads the kappa of the judge it used.

The built-in set is HHH alignment (Askell et al. 2021; ``../shared/datasets/hhh_alignment/``, 117 pairs of
helpful and harmless examples: a human-preferred and a dispreferred answer to one prompt). Its pairs are shown to
the judge with the preferred answer in position A for even pair indices and in position B for odd ones (the human
label is then A or B), and the judge sees each pair in both orders as everywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eval_assets import stats
from eval_assets.hashing import hash_value
from eval_assets.judge._cache import JudgeCache, JudgeIdentity
from eval_assets.judge._protocol import RUBRIC, rubric_hash
from eval_assets.judge._run import JudgeBackend, Pair, judge_pairs

#: Bump when how picks are derived or stored changes.
VALIDATION_VERSION = 1
HHH_SUBSETS = ("helpful", "harmless")


class ValidationDataError(ValueError):
    """A labelled pairs file cannot be read; the message names the file, line and field."""


@dataclass(frozen=True)
class LabelledPair:
    pair_id: str
    query: str
    answer_a: str
    answer_b: str
    human: str | None  # "A", "B" or None (unlabelled)


def load_hhh(root: Path) -> list[LabelledPair]:
    """The HHH alignment pairs (helpful, harmless): the first two target answers of each example, preferred (score
    1) and dispreferred (score 0), the preferred one in position A for even indices."""
    pairs: list[LabelledPair] = []
    for subset in HHH_SUBSETS:
        path = root / subset / "task.json"
        try:
            examples = json.loads(path.read_text(encoding="utf-8"))["examples"]
        except (OSError, KeyError, json.JSONDecodeError) as exc:
            raise ValidationDataError(f"{path}: cannot read the HHH examples ({exc})") from exc
        for index, example in enumerate(examples):
            scored = sorted(example["target_scores"].items(), key=lambda kv: -kv[1])
            good = next(text for text, score in scored if score == 1)
            bad = next(text for text, score in scored if score == 0)
            k = len(pairs)
            a, b, human = (good, bad, "A") if k % 2 == 0 else (bad, good, "B")
            pairs.append(LabelledPair(f"{subset}-{index}", str(example["input"]).strip(), a, b, human))
    return pairs


def load_pairs_file(path: Path) -> list[LabelledPair]:
    """A JSONL file of ``id, query, answer_a, answer_b`` and optionally ``human`` (A or B)."""
    pairs: list[LabelledPair] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValidationDataError(f"{path}: cannot read ({exc})") from exc
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationDataError(f"{where}: not a JSON object ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValidationDataError(f"{where}: not a JSON object")
        for field in ("id", "query", "answer_a", "answer_b"):
            if not isinstance(row.get(field), str | int) or not str(row.get(field)).strip():
                raise ValidationDataError(
                    f"{where}: field `{field}` is missing or empty (rows need id, query, answer_a, answer_b)"
                )
        human = row.get("human")
        if human is not None and human not in ("A", "B"):
            raise ValidationDataError(f'{where}: field `human` must be "A" or "B" (or absent), got {human!r}')
        pair_id = str(row["id"])
        if pair_id in seen:
            raise ValidationDataError(f"{where}: field `id`: {pair_id!r} repeats an earlier row")
        seen.add(pair_id)
        pairs.append(
            LabelledPair(pair_id, str(row["query"]), str(row["answer_a"]), str(row["answer_b"]), human)
        )
    if not pairs:
        raise ValidationDataError(f"{path}: no rows")
    return pairs


@dataclass(frozen=True)
class ValidationResult:
    judge_id: str
    judge_version: str
    rubric_hash: str
    dataset: str
    dataset_hash: str
    n_pairs: int
    n_labelled: int
    errors: int
    agreement: float | None
    kappa: float | None
    kappa_low: float | None
    kappa_high: float | None
    picks: dict[str, str]  # pair id -> A, B, tie or error
    position_consistency: float | None
    cost_usd: float
    validation_version: int = VALIDATION_VERSION

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.kappa is None:
            return (
                f"judge {self.judge_id} on {self.dataset}: kappa undefined ({self.n_labelled} labelled pairs)"
            )
        return (
            f"judge {self.judge_id} on {self.dataset} ({self.n_labelled} labelled pairs, both orders): agreement "
            f"{self.agreement:.1%}, Cohen's kappa {self.kappa:.3f} (95% CI [{self.kappa_low:.3f}, {self.kappa_high:.3f}]), "
            f"{self.errors} errors, position consistency {self.position_consistency:.1%}"
        )


def picks_of(judgements: Sequence[Any]) -> dict[str, str]:
    """Each pair's pick after both orders: A or B when both orders agree on the same answer, ``tie`` when they
    disagree or both say tie, ``error`` when either order errored. (Pairs are judged with ``answer_a`` as the
    "candidate", so verdict candidate = A.)"""
    by_pair: dict[str, dict[str, str]] = {}
    for j in judgements:
        by_pair.setdefault(j.item_id, {})[j.order] = j.verdict
    picks = {}
    for pair_id, orders in by_pair.items():
        ab, ba = orders.get("ab", "error"), orders.get("ba", "error")
        if "error" in (ab, ba):
            picks[pair_id] = "error"
        elif ab == ba and ab != "tie":
            picks[pair_id] = "A" if ab == "candidate" else "B"
        else:
            picks[pair_id] = "tie"
    return picks


def validate(
    backend: JudgeBackend, pairs: Sequence[LabelledPair], *, dataset: str, cache: JudgeCache | None,
    max_tokens: int = 1024, max_parse_retries: int = 2,
) -> ValidationResult:  # fmt: skip
    """Judge every pair in both orders and compare the picks with the human labels (kappa over labels A, B, tie:
    a tie never matches a human pick)."""
    identity = backend.identity
    judgements = judge_pairs(
        backend, [Pair(p.pair_id, p.query, p.answer_a, p.answer_b) for p in pairs], cache,
        max_tokens=max_tokens, max_parse_retries=max_parse_retries, report_as=(identity.judge_id, dataset),
    )  # fmt: skip
    picks = picks_of(judgements)
    labelled = [p for p in pairs if p.human is not None and picks[p.pair_id] != "error"]
    agreement = kappa = low = high = None
    if labelled:
        judge_labels = [picks[p.pair_id] for p in labelled]
        human_labels = [p.human for p in labelled]
        agreement = sum(j == h for j, h in zip(judge_labels, human_labels, strict=True)) / len(labelled)
        try:
            result = stats.cohens_kappa(judge_labels, human_labels, labels=("A", "B", "tie"))
            kappa, low, high = result.kappa, result.low, result.high
        except ValueError:
            kappa = None
    both = [j for j in judgements if j.verdict != "error"]
    by_pair: dict[str, list[str]] = {}
    for j in both:
        by_pair.setdefault(j.item_id, []).append(j.verdict)
    consistent = [v for v in by_pair.values() if len(v) == 2]
    return ValidationResult(
        judge_id=identity.judge_id, judge_version=identity.version, rubric_hash=rubric_hash(RUBRIC), dataset=dataset,
        dataset_hash=hash_value([asdict(p) for p in pairs])[:16], n_pairs=len(pairs), n_labelled=len(labelled),
        errors=sum(1 for v in picks.values() if v == "error"), agreement=agreement,
        kappa=None if kappa is None or math.isnan(kappa) else kappa, kappa_low=low, kappa_high=high, picks=picks,
        position_consistency=(sum(1 for v in consistent if v[0] == v[1]) / len(consistent)) if consistent else None,
        cost_usd=sum(j.cost_usd for j in judgements),
    )  # fmt: skip


class ValidationStore:
    """Validation results as JSON files, one per (judge id, judge version, rubric hash)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, identity: JudgeIdentity, rubric: str) -> Path:
        key = hash_value({"judge": identity.judge_id, "version": identity.version, "rubric": rubric,
                          "validation": VALIDATION_VERSION})[:24]  # fmt: skip
        return self.root / f"{key}.json"

    def get(self, identity: JudgeIdentity, rubric: str) -> dict[str, Any] | None:
        path = self._path(identity, rubric)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def put(self, identity: JudgeIdentity, result: ValidationResult) -> Path:
        path = self._path(identity, result.rubric_hash)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".partial")
        staging.write_text(json.dumps(result.as_dict(), sort_keys=True, indent=1), encoding="utf-8")
        staging.replace(path)
        return path
