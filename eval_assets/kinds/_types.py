"""The component types: a suite kind, a scorer, a loader, a model request, an extra stage. Dagster-free.

Every component is a small frozen dataclass holding plain typed callables, so a user's kind, scorer or loader is
an ordinary module that builds one of these and registers it (see :mod:`eval_assets.kinds._registry`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

import polars as pl
from pydantic import BaseModel, ConfigDict

from eval_assets.kinds._errors import MalformedPredictionError
from eval_assets.suites.items import GenerationItem, Item, LikelihoodItem

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec
    from resources.runners.base import ModelBackend
    from resources.table_location import TableLocation

I_contra = TypeVar("I_contra", contravariant=True)
O_contra = TypeVar("O_contra", contravariant=True)
P = TypeVar("P", bound=BaseModel)


# -- what a model returns, decoded ------------------------------------------------------------------------
@dataclass(frozen=True)
class LikelihoodOutput:
    """Log-likelihood of each continuation of a :class:`LikelihoodItem`, and whether it was the greedy one."""

    logprobs: tuple[float, ...]
    greedy: tuple[bool, ...]


@dataclass(frozen=True)
class GenerationOutput:
    """The text a model generated for a :class:`GenerationItem`."""

    text: str


@dataclass(frozen=True)
class ExecutionOutput:
    """How one sample of a code suite ran in the sandbox (``status``: passed, failed, timeout, memory,
    killed, error; ``error`` is the infrastructure's fault, not the model's)."""

    task_id: str
    sample_index: int
    status: str
    passed: bool


# -- scoring ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemScore:
    """The verdict on one item. ``score`` is in [0, 1] (1/0 for binary scorers); ``parsed`` is False when no
    answer could be read from the output (scored wrong and counted as ``unparsed``)."""

    prediction: str
    gold: str
    correct: bool
    score: float
    parsed: bool


class Scorer(Protocol[I_contra, O_contra]):
    """A plain typed callable: ``(item, output) -> ItemScore``. Knows nothing of Dagster or the model."""

    def __call__(self, item: I_contra, output: O_contra, /) -> ItemScore: ...


class NoParams(BaseModel):
    """A scorer without parameters: its spec's ``scorer`` section must be empty."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ScorerEntry(Generic[P]):
    """A registered scorer. ``build(params)`` returns the :class:`Scorer`; ``params`` is the pydantic model of
    the spec's ``scorer`` section (``extra="forbid"``). ``kinds`` are the suite kinds whose outputs it reads.
    ``binary`` says its scores are 0/1 (the suite CI is then Wilson's; otherwise a seeded bootstrap).
    ``check_gold(params, gold)`` raises ``ValueError`` for a reference answer it could never match, so a bad
    data file fails when loaded, before the model runs."""

    name: str
    kinds: frozenset[str]
    build: Callable[[P], Scorer[Any, Any]]
    params: type[P]
    description: str
    binary: bool = True
    check_gold: Callable[[P, str], None] | None = None


# -- model requests ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelRequest:
    """How a prediction is produced: the request sent to the model backend for a batch of items.

    ``prompt_hash(spec, item, tokenizer_hash)`` hashes everything that renders the prompt (a cache key part);
    ``compute(backend, spec, items)`` returns one JSON output per item and the number of model calls made;
    ``decode(item, output_json)`` reads a stored output back (raising :class:`MalformedPredictionError`)."""

    name: str
    prompt_hash: Callable[[SuiteSpec, Item, str], str]
    compute: Callable[[ModelBackend, SuiteSpec, Sequence[Item]], tuple[list[str], int]]
    decode: Callable[[Item, str], Any]


# -- loading ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadContext:
    """Where a loader finds its data: the data packages' directory, and the directory of the spec file (data
    paths in a user's spec are relative to it; ``None`` for a spec that was not read from a file)."""

    data_root: Path
    spec_dir: Path | None = None


@dataclass(frozen=True)
class Records:
    """Rows of a user's data file, for a kind to turn into items. ``fewshot`` is the few-shot pool (a second
    file or a split of the same file). ``where(index)`` names a row in error messages (``file:line``)."""

    rows: Sequence[Mapping[str, Any]]
    where: Callable[[int], str]
    fewshot: Sequence[Mapping[str, Any]] = ()
    fewshot_where: Callable[[int], str] = lambda index: f"few-shot row {index}"
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordItems(Generic[P]):
    """How a kind turns a user's records into items: ``fields`` is the model of the spec's ``data.fields``
    (which column holds the question, the choices, the gold answer ...), ``build(spec, fields, records)`` renders
    the items, ``check(spec, fields)`` adds parse-time rules (raising :class:`SpecFieldError`)."""

    fields: type[P]
    build: Callable[[SuiteSpec, P, Records], list[Item]]
    check: Callable[[SuiteSpec, P], None] | None = None


@dataclass(frozen=True)
class Loader(Generic[P]):
    """A registered loader: ``load(spec, options, context) -> items``. ``options`` is the spec's ``data``
    section validated by ``options`` (``None`` when the loader takes none, and then ``data`` must be absent).
    ``kinds`` are the kinds it can feed (or a predicate over kind names). ``renders_template`` is False for loaders with their own fixed prompt
    (then ``template.format`` and friends are refused). ``check(spec, options)`` adds cross-field rules and
    raises ``ValueError``. ``fingerprint(options)`` names outside inputs that shape the items (e.g. the
    lm-eval version) and enters the suite's code version."""

    name: str
    kinds: frozenset[str] | Callable[[str], bool]
    load: Callable[[SuiteSpec, P | None, LoadContext], list[Item]]
    description: str
    options: type[P] | None = None
    renders_template: bool = False
    check: Callable[[SuiteSpec, P | None], None] | None = None
    fingerprint: Callable[[P | None], str | None] | None = None

    def feeds(self, kind: str) -> bool:
        return self.kinds(kind) if callable(self.kinds) else kind in self.kinds


# -- extra stages between predictions and scores (code suites: sandboxed executions) ------------------------
@dataclass(frozen=True)
class StageEnv:
    """What a stage may use, handed in by the Dagster wrapper (plain values and factories, no Dagster)."""

    checkpoint: str
    data_root: Path
    #: where the results tables live (a local folder or an object store; a ``Path`` is a local folder): a
    #: stage's own caches go under it, opened with ``TableLocation.of`` (never assume a local path)
    tables: TableLocation | Path
    sandbox_pool: Callable[[], Any]
    log: Callable[[str], None] = lambda message: None
    #: the Dagster resources the stage declared in :attr:`Stage.resources`, by key
    resources: Mapping[str, Any] = field(default_factory=dict)
    #: the current production (``checkpoint``, ``model_hash``) when the stage declared ``reads_production``
    production: tuple[str, str] | None = None


@dataclass(frozen=True)
class StageResult:
    """A stage's output table (written to the results table of the stage's name), the content its data version
    hashes, and metadata (plain JSON values) for the materialization."""

    frame: pl.DataFrame
    content: Any
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """An extra asset ``<name>/<suite>`` a kind adds after ``predictions/<suite>`` (in order); its code version
    is the suite's plus ``version``. ``resources`` names further Dagster resources the stage needs (a judge, a
    classifier), handed in as :attr:`StageEnv.resources`. ``reads_production`` makes the stage an downstream of
    the ``production`` asset (a move re-runs it) and hands it the current production."""

    name: str
    version: str
    description: str
    run: Callable[[SuiteSpec, pl.DataFrame, StageEnv], StageResult]
    resources: tuple[str, ...] = ()
    reads_production: bool = False


# -- kinds --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SuiteScores:
    """A suite's per-item scores and the counts its summary reports.

    ``n_total`` counts prediction items attempted (code suites: problems × samples); ``errors`` counts those
    excluded from the score because of infrastructure errors, in the same unit. ``binary`` says every per-item
    score is 0/1 (Wilson CI) rather than a fraction (clustered Wilson by ``sample_counts`` where given, else
    a seeded bootstrap)."""

    item_scores: pl.DataFrame
    n_total: int
    errors: int
    binary: bool
    metric: str
    details: Mapping[str, Any] = field(default_factory=dict)
    #: how many correlated samples each item's score is the share of (code suites: the samples of a problem
    #: that ran); the suite's CI is then a Wilson interval clustered by item
    sample_counts: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SuiteKind:
    """A registered suite kind: how items load (``item_type``, and ``records``: how a user's rows become items), how a
    prediction is produced (``request``), how it is scored (``score``), and which assets it adds (``stages``).

    ``score(spec, checkpoint, upstream, load_items)`` reads the last stage's table (or the predictions) and
    returns :class:`SuiteScores`; ``load_items()`` gives the profile's items when the kind needs them.
    ``sampling`` says whether a spec must or must not have a ``sampling`` section; ``takes_limits`` whether it
    may have ``limits``."""

    name: str
    description: str
    item_type: type[LikelihoodItem] | type[GenerationItem]
    request: ModelRequest
    score: Callable[[SuiteSpec, str, pl.DataFrame, Callable[[], list[Item]]], SuiteScores]
    sampling: Literal["required", "forbidden"]
    stages: tuple[Stage, ...] = ()
    takes_limits: bool = False
    records: RecordItems[Any] | None = None
    #: the score already is a comparison with production (pairwise): no paired ``comparison/<suite>`` asset and
    #: no regression rule; head-to-head rules (``judge_win_rate``) apply instead
    head_to_head: bool = False


def output_json(output: str, item_id: str) -> dict[str, Any]:
    """A stored output as a JSON object, or :class:`MalformedPredictionError` naming the item."""
    try:
        value = json.loads(output)
    except (json.JSONDecodeError, TypeError) as exc:
        raise MalformedPredictionError(
            f"item {item_id}: prediction {str(output)[:80]!r} is not JSON ({exc})"
        ) from exc
    if not isinstance(value, dict):
        raise MalformedPredictionError(
            f"item {item_id}: prediction {str(output)[:80]!r} is not a JSON object"
        )
    return value
