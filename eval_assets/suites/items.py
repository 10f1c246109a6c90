"""The unit of evaluation: one item of a suite, ready to send to a model."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LikelihoodItem:
    """A multiple-choice item scored by the log-likelihood of each continuation given the context
    (lm-eval-harness shape: one ``(context, continuation)`` request per choice)."""

    item_id: str
    context: str
    continuations: tuple[str, ...]
    gold: int
    meta: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def requests(self) -> list[tuple[str, str]]:
        return [(self.context, continuation) for continuation in self.continuations]


@dataclass(frozen=True)
class GenerationItem:
    """A free-generation item: chat messages (or a plain prompt), a reference answer. ``sample`` numbers the
    samples of one prompt (code suites draw several for pass@k); it is part of the prompt hash."""

    item_id: str
    messages: tuple[tuple[str, str], ...]
    gold: str
    sample: int = 0
    meta: dict[str, str] = field(default_factory=dict, compare=False)


Item = LikelihoodItem | GenerationItem
