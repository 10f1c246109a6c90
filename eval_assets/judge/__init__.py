"""The LLM judge, Dagster-free: the protocol (rubric, both orders, strict verdict format), the judge cache, the
bias diagnostics, validation against human labels, and the price table. Backends live in :mod:`resources.judges`."""

from eval_assets.judge._cache import CachedVerdict, JudgeCache, JudgeIdentity, judge_key
from eval_assets.judge._diagnostics import (
    Diagnostics,
    PromptOutcome,
    diagnose,
    length_controlled_win_rate,
    prompt_outcomes,
)
from eval_assets.judge._independence import (
    EMBEDDED_PROVENANCE,
    Independence,
    JudgeNotIndependentError,
    check_independence,
    family_of,
)
from eval_assets.judge._prices import ModelPrice, PriceTable, PriceTableError, load_prices
from eval_assets.judge._protocol import (
    ORDERS,
    OUTCOME_SCORE,
    RUBRIC,
    RUBRIC_VERSION,
    JudgeReply,
    JudgeRequest,
    ParsedVerdict,
    combine,
    parse_verdict,
    render_pair,
    rubric_hash,
    to_verdict,
)
from eval_assets.judge._run import JudgeBackend, OrderedJudgement, Pair, judge_pairs
from eval_assets.judge._validation import (
    LabelledPair,
    ValidationDataError,
    ValidationResult,
    ValidationStore,
    load_hhh,
    load_pairs_file,
    picks_of,
    validate,
)

__all__ = [
    "EMBEDDED_PROVENANCE",
    "ORDERS",
    "OUTCOME_SCORE",
    "RUBRIC",
    "RUBRIC_VERSION",
    "CachedVerdict",
    "Diagnostics",
    "Independence",
    "JudgeBackend",
    "JudgeCache",
    "JudgeIdentity",
    "JudgeNotIndependentError",
    "JudgeReply",
    "JudgeRequest",
    "LabelledPair",
    "ModelPrice",
    "OrderedJudgement",
    "Pair",
    "ParsedVerdict",
    "PriceTable",
    "PriceTableError",
    "PromptOutcome",
    "ValidationDataError",
    "ValidationResult",
    "ValidationStore",
    "check_independence",
    "combine",
    "diagnose",
    "family_of",
    "judge_key",
    "judge_pairs",
    "length_controlled_win_rate",
    "load_hhh",
    "load_pairs_file",
    "load_prices",
    "parse_verdict",
    "picks_of",
    "prompt_outcomes",
    "render_pair",
    "rubric_hash",
    "to_verdict",
    "validate",
]
