"""The ``human_eval_sample`` asset: per checkpoint, the seeded stratified sample people label, with what they
see (prompt, answers, reference) and why each item is in it. A thin asset over :mod:`._sampling`."""

from collections.abc import Mapping

import dagster as dg
import polars as pl

from eval_assets.defs.automation import evaluate_when_new_or_changed
from eval_assets.defs.partitions import checkpoints
from eval_assets.hashing import hash_value
from eval_assets.human_eval._content import attach_content
from eval_assets.human_eval._policy import SamplingPolicy, load_sampling_policy
from eval_assets.human_eval._sampling import checkpoint_strata, draw_sample, is_sampled
from eval_assets.human_eval._store import HumanEvalStore, read_frame
from eval_assets.suites.items import Item
from eval_assets.suites.loaders import load_items
from eval_assets.suites.spec import SuiteSpec
from resources.evalgate import EvalgateHome, SuiteSettings

#: Tables written by the judge and red-team stages, read when present.
JUDGE_TABLE = "judge_verdicts"
REFUSAL_TABLE = "refusal_labels"
SAMPLE_VERSION = 1


def build_human_eval_assets(
    specs: Mapping[str, SuiteSpec], profiles: Mapping[str, str]
) -> list[dg.AssetsDefinition]:
    """``human_eval_sample`` and ``dashboard`` for these suites (``profiles``: each suite's profile)."""
    from eval_assets.dashboard.assets import build_dashboard_asset

    return [build_human_eval_sample_asset(specs, profiles=profiles), build_dashboard_asset(sorted(specs))]


def build_human_eval_sample_asset(
    specs: Mapping[str, SuiteSpec], *, profiles: Mapping[str, str], policy: SamplingPolicy | None = None
) -> dg.AssetsDefinition:
    policy = policy or load_sampling_policy()
    kinds = {name: spec.kind for name, spec in specs.items()}
    sampled = sorted(name for name, kind in kinds.items() if is_sampled(kind, policy))
    deps = [dg.AssetKey(["scores", name]) for name in sampled]

    @dg.asset(
        deps=deps,
        partitions_def=checkpoints,
        code_version=hash_value({"policy": policy.policy_hash, "suites": sampled, "version": SAMPLE_VERSION}),
        automation_condition=evaluate_when_new_or_changed(),
        group_name="human_eval",
        kinds={"python", "deltalake"},
        description="The seeded, stratified sample of this checkpoint's items for human labelling (by suite; "
        "judge suites by verdict with disagreeing orders oversampled; red-team suites by classifier label "
        "with classifier disagreements oversampled), each row with its stratum and why; sized by "
        "eval_assets/human_eval/policy.yaml. Labelled with `evalgate label`.",
    )
    def human_eval_sample(
        context: dg.AssetExecutionContext, evalgate: EvalgateHome, suite_settings: SuiteSettings
    ) -> dg.Output[pl.DataFrame]:
        checkpoint = context.partition_key
        tables = evalgate.tables()
        results = evalgate.results()
        item_scores = results.read("item_scores", checkpoint=checkpoint)
        judge = read_frame(tables.child(JUDGE_TABLE), checkpoint)
        refusal = read_frame(tables.child(REFUSAL_TABLE), checkpoint)
        strata = checkpoint_strata(
            kinds={s: kinds[s] for s in sampled}, item_scores=item_scores, judge_verdicts=judge,
            refusal_labels=refusal, policy=policy,
        )  # fmt: skip
        sample = draw_sample(strata, checkpoint=checkpoint, kinds=kinds, policy=policy)
        wanted = set(sample.select("suite", "item_id").iter_rows())
        items: dict[tuple[str, str], Item] = {}
        for suite in sorted({s for s, _ in wanted}):
            for item in load_items(specs[suite], profiles.get(suite, "smoke"), suite_settings.data_root()):
                if (suite, item.item_id) in wanted:
                    items.setdefault((suite, item.item_id), item)
        opponents: dict[tuple[str, str], str] = {}
        if judge.height and "opponent" in judge.columns:
            for suite, item_id, opponent in (
                judge.select("suite", "item_id", "opponent").drop_nulls().iter_rows()
            ):
                opponents.setdefault((str(suite), str(item_id)), str(opponent))
        predictions = pl.concat(
            [results.read("predictions", checkpoint=c) for c in sorted({checkpoint, *opponents.values()})],
            how="diagonal_relaxed",
        )
        sample = attach_content(
            sample, items=items, predictions=predictions, item_scores=item_scores, opponents=opponents
        )
        HumanEvalStore(tables).write_sample(checkpoint, sample)
        per_stratum = {
            f"{s}/{t}": n
            for s, t, n in sample.group_by(["suite", "stratum"]).len().sort(["suite", "stratum"]).iter_rows()
        }
        notes = []
        if not judge.height:
            notes.append(f"no {JUDGE_TABLE} rows for this checkpoint: pairwise strata not used")
        if not refusal.height:
            notes.append(f"no {REFUSAL_TABLE} rows for this checkpoint: red-team strata not used")
        return dg.Output(
            sample,
            metadata={
                "items": sample.height,
                "per_stratum": dg.MetadataValue.json(per_stratum),
                "seed": policy.seed,
                "policy_version": policy.version,
                "notes": "; ".join(notes) or "-",
                "label_with": f"evalgate label --checkpoint {checkpoint} --rater NAME",
            },
            data_version=dg.DataVersion(hash_value(sample.drop("reason").to_dicts())),
        )

    return human_eval_sample
