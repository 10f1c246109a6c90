"""Suite kinds, scorers and loaders as registered components (Inspect AI's ``@scorer`` registry is the model).

A **kind** (:class:`SuiteKind`) says how items load (its item type; :class:`RecordItems` for a user's rows), how a
prediction is produced (:class:`ModelRequest`: likelihood or generation), how it is scored, and which assets it
adds after ``predictions/<suite>`` (:class:`Stage`: code suites add ``code_executions/<suite>``). A **scorer**
(:class:`ScorerEntry`) is a plain typed callable ``(item, output) -> ItemScore`` built from its typed parameters
(the spec's ``scorer`` section). A **loader** (:class:`Loader`) turns a spec (and its ``data`` section) into
items. Dagster-free: :mod:`eval_assets.defs.suite_assets` builds the assets from these.

Adding one touches only its own module plus one line in :mod:`eval_assets.kinds._builtin`; an installed package
registers its modules through the ``evalgate.components`` entry-point group::

    # my_pkg/first_word.py
    from eval_assets.kinds import ItemScore, NoParams, ScorerEntry, register_scorer

    def first_word(item, output):
        word = (output.text.split() or [""])[0]
        return ItemScore(word, item.gold, word == item.gold, float(word == item.gold), bool(word))

    register_scorer(ScorerEntry("first_word", frozenset({"generation"}), lambda _p: first_word, NoParams, "..."))

Built in: kinds ``likelihood``, ``generation``, ``code``; metrics ``acc``, ``exact_match``, ``regex``,
``numeric``, ``contains``, ``pass_at_k``; loaders ``file``, ``lm_eval``, ``arc_easy``, ``mmlu``, ``gsm8k``,
``humaneval``, ``mbpp``.
"""

from eval_assets.kinds._errors import MalformedPredictionError, SpecFieldError
from eval_assets.kinds._registry import (
    ENTRY_POINT_GROUP,
    KINDS,
    LOADERS,
    SCORERS,
    Registry,
    UnknownComponentError,
    get_kind,
    get_loader,
    get_scorer,
    loaders_for,
    register_kind,
    register_loader,
    register_scorer,
    scorers_for,
)
from eval_assets.kinds._types import (
    ExecutionOutput,
    GenerationOutput,
    ItemScore,
    LikelihoodOutput,
    LoadContext,
    Loader,
    ModelRequest,
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

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "LOADERS",
    "SCORERS",
    "ExecutionOutput",
    "GenerationOutput",
    "ItemScore",
    "LikelihoodOutput",
    "LoadContext",
    "Loader",
    "MalformedPredictionError",
    "ModelRequest",
    "NoParams",
    "RecordItems",
    "Records",
    "Registry",
    "Scorer",
    "ScorerEntry",
    "SpecFieldError",
    "Stage",
    "StageEnv",
    "StageResult",
    "SuiteKind",
    "SuiteScores",
    "UnknownComponentError",
    "get_kind",
    "get_loader",
    "get_scorer",
    "loaders_for",
    "register_kind",
    "register_loader",
    "register_scorer",
    "scorers_for",
]
