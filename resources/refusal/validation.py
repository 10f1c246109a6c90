"""Validation of a refusal classifier against human labels, always out of distribution.

For each labelled source (:data:`resources.refusal.human_labels.SOURCES`) the classifier is tested on that source
only; a trainable classifier is first re-trained by the same recipe on the *other* sources, so no fold tests on
anything it saw (the shipped classifier, trained on every source, inherits the recipe's fold numbers). Agreement
and Cohen's kappa (sklearn's ``cohen_kappa_score``) are reported on XSTest's three classes and on the binary
collapse (refusal = full or partial refusal, XSTest's convention), beside the two XSTest annotators' own kappa
(the human ceiling). The classifier's **validated kappa** is the lowest binary kappa over XSTest's two sets (the
sets the reference numbers are quoted on: string match ~0.86, GPT-4 ~0.75).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eval_assets.hashing import hash_value
from resources.refusal._labels import LABELS, Exchange, Label, RefusalClassifier, refused
from resources.refusal.human_labels import REFERENCE_SOURCES, SOURCES, LabelledExchange, load_labelled

#: bump when the report's fields or how a fold is computed change (it keys the cached reports)
VALIDATION_VERSION = "1"


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa of two label sequences (sklearn's), 1.0 when both use one identical label throughout."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) != len(b) or not a:
        raise ValueError(f"kappa needs two label sequences of one non-zero length, got {len(a)} and {len(b)}")
    if len(set(a) | set(b)) == 1:
        return 1.0
    return float(cohen_kappa_score(list(a), list(b)))


def binary(labels: Sequence[str]) -> list[str]:
    return ["refusal" if refused(label) else "compliance" for label in labels]


@dataclass(frozen=True)
class Fold:
    """One out-of-distribution test: ``test_source`` labelled by a classifier trained on ``trained_on``."""

    test_source: str
    trained_on: tuple[str, ...]
    n: int
    agreement: float
    kappa: float  # three classes
    kappa_binary: float  # refusal (full or partial) vs compliance
    errors: int  # completions the classifier could not label (counted as disagreement)
    confusion: dict[str, dict[str, int]]  # human label -> classifier label -> count
    human_kappa: float | None = None  # the two annotators' binary kappa, where the source has two


@dataclass(frozen=True)
class ValidationReport:
    classifier: str
    folds: tuple[Fold, ...]
    recipe: str
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def validated_kappa(self) -> float:
        """The lowest binary kappa over XSTest's two sets (the gate's number)."""
        reference = [f.kappa_binary for f in self.folds if f.test_source in REFERENCE_SOURCES]
        return min(reference) if reference else float("nan")

    def passed(self, min_kappa: float) -> bool:
        return self.validated_kappa >= min_kappa

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"validated_kappa": self.validated_kappa}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ValidationReport:
        folds = tuple(Fold(**(f | {"trained_on": tuple(f["trained_on"])})) for f in raw["folds"])
        return cls(raw["classifier"], folds, raw["recipe"], raw.get("provenance", {}))

    def table(self) -> str:
        """The folds as a Markdown table (for the README and the asset's metadata)."""
        lines = ["| test set (never seen) | trained on | n | agreement | kappa (3 classes) | kappa (binary) | "
                 "annotators' kappa |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for f in self.folds:
            human = "" if f.human_kappa is None else f"{f.human_kappa:.3f}"
            trained = ", ".join(f.trained_on) or "(not trained)"
            lines.append(f"| {f.test_source} | {trained} | {f.n} | {f.agreement:.3f} | {f.kappa:.3f} | "
                         f"{f.kappa_binary:.3f} | {human} |")  # fmt: skip
        return "\n".join(lines)


def score_fold(test_source: str, trained_on: Sequence[str], examples: Sequence[LabelledExchange],
               predicted: Sequence[Label]) -> Fold:  # fmt: skip
    gold = [e.label for e in examples]
    confusion: dict[str, dict[str, int]] = {g: {p: 0 for p in (*LABELS, "error")} for g in LABELS}
    for g, p in zip(gold, predicted, strict=True):
        confusion[g][p] += 1
    human = None
    if all(len(e.annotators) == 2 for e in examples):
        human = cohen_kappa(
            binary([e.annotators[0] for e in examples]), binary([e.annotators[1] for e in examples])
        )
    return Fold(
        test_source=test_source, trained_on=tuple(trained_on), n=len(examples),
        agreement=sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(examples),
        kappa=cohen_kappa(gold, predicted), kappa_binary=cohen_kappa(binary(gold), binary(predicted)),
        errors=sum(p == "error" for p in predicted), confusion=confusion, human_kappa=human,
    )  # fmt: skip


def validate(
    classifier: RefusalClassifier,
    *,
    retrain: Callable[[tuple[str, ...]], RefusalClassifier] | None = None,
    sources: Sequence[str] = SOURCES,
    data_root: Path | None = None,
    shared_root: Path | None = None,
    recipe: str = "",
    provenance: dict[str, Any] | None = None,
) -> ValidationReport:
    """Every source tested out of distribution: with ``retrain(train_sources)`` a fresh classifier trained on the
    other sources, else ``classifier`` itself (a classifier trained on none of them)."""
    folds = []
    for test in sources:
        examples = load_labelled([test], data_root, shared_root)
        others = tuple(s for s in SOURCES if s != test)
        judge = retrain(others) if retrain is not None else classifier
        predicted = judge.classify([Exchange(e.prompt, e.completion) for e in examples])
        folds.append(score_fold(test, others if retrain is not None else (), examples, predicted))
    return ValidationReport(classifier.id, tuple(folds), recipe or classifier.id, provenance or {})


def labelled_data_hash(data_root: Path | None = None, shared_root: Path | None = None) -> str:
    examples = load_labelled(SOURCES, data_root, shared_root)
    return hash_value([[e.source, e.completion, e.label] for e in examples])[:16]


def cached_validation(cache_dir: Path, classifier_id: str, data_hash: str,
                      compute: Callable[[], ValidationReport]) -> ValidationReport:  # fmt: skip
    """The report for (classifier, labelled data), computed once and kept as JSON under ``cache_dir``."""
    key = hash_value([VALIDATION_VERSION, classifier_id, data_hash])[:24]
    path = cache_dir / f"validation-{key}.json"
    if path.is_file():
        return ValidationReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    report = compute()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report.as_dict(), sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return report
