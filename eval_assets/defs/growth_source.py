"""Per-item scores of a checkpoint on the first ``n`` items of a suite's prefix-stable selection, for the
gate's planned growth: predictions come from the cache where they exist (so each stage only runs its new
items, once per checkpoint, ever) and the model otherwise. Kinds with extra stages (code suites, whose scores
need sandbox executions) do not grow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from eval_assets.checkpoints import CheckpointManifest
from eval_assets.growth import ScoresAt
from eval_assets.kinds import get_kind
from eval_assets.predict import predict_suite
from eval_assets.scoring import score_items
from eval_assets.suites.loaders import load_all_items, select, with_samples
from eval_assets.suites.spec import SuiteSpec
from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings


def can_grow(spec: SuiteSpec) -> bool:
    return not get_kind(spec.kind).stages


class GrowthSource:
    """Item scores for growth, for a candidate against a production checkpoint."""

    def __init__(
        self,
        spec: SuiteSpec,
        settings: SuiteSettings,
        evalgate: EvalgateHome,
        runner: ModelRunner,
        log: Callable[[str], None],
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.evalgate = evalgate
        self.runner = runner
        self.log = log
        self.all_items = load_all_items(spec, settings.data_root())

    @property
    def available(self) -> int:
        return len(self.all_items)

    def item_scores(self, manifest: CheckpointManifest, n: int) -> pl.DataFrame:
        name = self.settings.profile_for(self.spec.name)
        profile = self.spec.profile(name).model_copy(update={"limit": n})
        items = with_samples(select(self.all_items, profile), self.spec.samples(name))
        frame, run = predict_suite(
            checkpoint=manifest.name, **manifest.key_hashes(), spec=self.spec, items=items, cache=self.evalgate.prediction_cache(), engine=self.runner.engine(manifest),
            open_backend=lambda: self.runner.open(manifest, self.evalgate.layout.model_cache),
        )  # fmt: skip
        if run.model_calls:
            self.log(
                f"{self.spec.name}: {manifest.name} evaluated on {run.cache_misses} more items ({n} in all)"
            )
        return score_items(self.spec, items, frame)

    def scores_at(self, candidate: CheckpointManifest, production: CheckpointManifest) -> ScoresAt:
        def paired(n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
            cand = self.item_scores(candidate, n).select("item_id", pl.col("score").alias("cand"))
            prod = self.item_scores(production, n).select("item_id", pl.col("score").alias("prod"))
            joined = cand.join(prod, on="item_id", how="inner").sort("item_id")
            return joined["cand"].to_numpy(), joined["prod"].to_numpy()

        return paired
