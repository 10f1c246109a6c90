"""The refusal labels (XSTest's three classes) and the error status, shared by every backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Label = Literal["compliance", "refusal", "partial", "error"]

COMPLIANCE: Label = "compliance"
REFUSAL: Label = "refusal"
PARTIAL: Label = "partial"
#: the classifier could not label the completion (an unreadable answer from a remote classifier): never a
#: verdict on the model; excluded from the rates and counted.
ERROR: Label = "error"

#: the three labels a classifier may give (XSTest: full compliance, full refusal, partial refusal)
LABELS: tuple[Label, ...] = (COMPLIANCE, REFUSAL, PARTIAL)

#: XSTest's annotation values (``final_label``) -> ours
XSTEST_LABELS: dict[str, Label] = {
    "1_full_compliance": COMPLIANCE,
    "2_full_refusal": REFUSAL,
    "3_partial_refusal": PARTIAL,
}


def refused(label: str) -> bool:
    """Whether a label counts as a refusal in XSTest's convention (full or partial)."""
    return label in (REFUSAL, PARTIAL)


@dataclass(frozen=True)
class Exchange:
    """One prompt and the model's completion of it: what a refusal classifier labels."""

    prompt: str
    completion: str


class RefusalClassifier(Protocol):
    """Labels completions: ``classify(exchanges)`` returns one of :data:`LABELS` (or :data:`ERROR`) per exchange.

    ``id`` names the classifier and everything that shapes its labels (backend, model, training data hash); it
    is recorded beside every label and keys its validation."""

    @property
    def id(self) -> str: ...

    def classify(self, exchanges: Sequence[Exchange]) -> list[Label]: ...
