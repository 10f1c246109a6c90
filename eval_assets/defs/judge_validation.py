"""``judge_validation``: the judge's agreement and Cohen's kappa against human-labelled pairs (HHH alignment, 117
pairs, both orders), cached per (judge id and version, rubric hash): re-run only when either changes (or the
data set does). Its check ``judge_agrees_with_humans`` states the numbers against the policy's ``min_kappa``;
the ``judge_win_rate`` rule reads the same stored result, so an unvalidated judge never decides a gate.

Beside HHH it reports the judge's agreement with the team's own labels (``human_labels``, from ``evalgate label``)
per pairwise suite; from ``min_human_labels`` items on a suite that kappa counts too, and the lower one is trusted
(:mod:`eval_assets.human_eval._trust`): the check passes only when every counted kappa exceeds ``min_kappa``.

Not partitioned by checkpoint (it does not depend on one). ``evalgate judge validate`` runs the same validation
on a user's own labelled pairs."""

from pathlib import Path
from typing import Any

import dagster as dg

from eval_assets.datapkgs import shared_datasets_dir
from eval_assets.gate import GatePolicy
from eval_assets.hashing import hash_value
from eval_assets.human_eval import (
    agreement_table,
    in_house_per_suite,
    judge_human_agreement,
    trusted_over_suites,
)
from eval_assets.judge import (
    EMBEDDED_PROVENANCE,
    RUBRIC,
    JudgeCache,
    ValidationResult,
    ValidationStore,
    load_hhh,
    rubric_hash,
    validate,
)
from eval_assets.kinds.pairwise import VERDICTS_TABLE, judge_local_dir
from resources.evalgate import EvalgateHome, SuiteSettings
from resources.judge import JudgeResource

ASSET_KEY = "judge_validation"
CHECK_NAME = "judge_agrees_with_humans"
DATASET = "hhh_alignment"


def judge_dir(evalgate: EvalgateHome, name: str) -> Path:
    """The judge's local folders, where the ``judge_verdicts`` stages keep theirs."""
    return judge_local_dir(evalgate.tables(), name)


def not_validated(judge_id: str, why: str) -> dict[str, Any]:
    return {"judge_id": judge_id, "dataset": DATASET, "kappa": None, "agreement": None, "n_labelled": 0,
            "errors": 0, "status": why}  # fmt: skip


def in_house_agreement(evalgate: EvalgateHome, judge_id: str, rubric: str) -> list[dict[str, Any]]:
    """The judge's agreement with the team's own labels, per pairwise suite it judged (pooled over checkpoints)."""
    return in_house_per_suite(
        evalgate.tables(), VERDICTS_TABLE,
        lambda labels, verdicts, s: judge_human_agreement(labels, verdicts, suite=s, judge_id=judge_id,
                                                          rubric_hash=rubric),
    )  # fmt: skip


def run_validation(
    judge: JudgeResource, data_root: Path, store: ValidationStore, cache: JudgeCache, pairs_root: Path,
    log: Any = print, *, compute: bool = True,
) -> tuple[ValidationResult | dict[str, Any], bool]:  # fmt: skip
    """The stored validation of this judge and rubric on HHH, or a fresh one (stored) when ``compute``; and
    whether it ran now."""
    backend = judge.open(data_root)
    identity = backend.identity
    pairs = load_hhh(pairs_root)
    stored = store.get(identity, rubric_hash(RUBRIC))
    if stored is not None and stored.get("dataset_hash") == hash_value([p.__dict__ for p in pairs])[:16]:
        return stored, False
    if not compute:
        why = (f"no validation on record for judge {identity.judge_id} and this rubric; it is not computed inside a "
               "checkpoint's run (234 judgements): materialize judge_validation on its own (Dagster UI, or "
               "`dagster asset materialize -m eval_assets.definitions --select judge_validation`), or set "
               "JudgeResource.validate_in_checkpoint_runs")  # fmt: skip
        log(why)
        return not_validated(identity.judge_id, why), False
    log(f"validating judge {identity.judge_id} on {DATASET}: {len(pairs)} pairs x 2 orders")
    result = validate(backend, pairs, dataset=DATASET, cache=cache, max_tokens=judge.max_tokens,
                      max_parse_retries=judge.max_parse_retries)  # fmt: skip
    store.put(identity, result)
    return result, True


def build_judge_validation(policy: GatePolicy) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    section = policy.section("judge_win_rate")

    @dg.asset(
        key=ASSET_KEY,
        group_name="gate",
        kinds={"python"},
        description=f"The judge's agreement and Cohen's kappa against human-labelled pairs ({DATASET}, both "
        "orders), cached per judge id and version and rubric hash.",
    )
    def judge_validation(
        context: dg.AssetExecutionContext,
        judge: JudgeResource,
        evalgate: EvalgateHome,
        suite_settings: SuiteSettings,
    ) -> dg.Output[dict[str, Any]]:
        cache = JudgeCache(judge_dir(evalgate, "judge_cache") / "verdicts.sqlite")
        # a checkpoint's run (partitioned) only reads the stored validation unless told otherwise
        in_checkpoint_run = "dagster/partition" in context.run.tags
        try:
            result, ran = run_validation(
                judge, suite_settings.data_root(), ValidationStore(judge_dir(evalgate, "judge_validation")), cache,
                shared_datasets_dir() / DATASET, context.log.info,
                compute=judge.validate_in_checkpoint_runs or not in_checkpoint_run,
            )  # fmt: skip
        finally:
            cache.close()
        value = result.as_dict() if isinstance(result, ValidationResult) else result
        in_house = in_house_agreement(evalgate, value["judge_id"], rubric_hash(RUBRIC))
        value = {k: v for k, v in value.items() if k != "picks"} | {"reused": not ran, "in_house": in_house}
        return dg.Output(
            value,
            data_version=dg.DataVersion(hash_value(value | {"reused": None})[:32]),
            metadata={
                "judge": value["judge_id"], "kappa": dg.MetadataValue.float(value["kappa"] if value["kappa"] is not None else float("nan")),
                "agreement": dg.MetadataValue.float(value["agreement"] if value["agreement"] is not None else float("nan")),
                "n_labelled": value["n_labelled"], "errors": value["errors"], "reused": not ran,
                "embedded_judge_provenance": EMBEDDED_PROVENANCE,
                "in_house": dg.MetadataValue.md(agreement_table(in_house)),
            },
        )  # fmt: skip

    @dg.asset_check(asset=ASSET_KEY, name=CHECK_NAME, blocking=False,
                    description=f"The judge's Cohen's kappa against human labels exceeds {section.min_kappa}.")  # fmt: skip
    def judge_agrees_with_humans(value: dict[str, Any]) -> dg.AssetCheckResult:
        reference = value.get("kappa")
        kappa, people = trusted_over_suites(reference, value.get("in_house", []), section.min_human_labels)
        passed = kappa is not None and kappa > section.min_kappa
        shown = "undefined" if reference is None else f"{reference:.3f}"
        reason = (
            f"judge {value['judge_id']}: kappa {shown} on {value['dataset']} ({value['n_labelled']} labelled pairs, "
            f"agreement {value['agreement'] if value['agreement'] is None else format(value['agreement'], '.1%')}); "
            f"{people}; "
            + ("validated" if passed else f"not validated (needs > {section.min_kappa}): judge_win_rate "
               f"verdicts {'block' if section.unvalidated == 'block' else 'warn'}")
        )  # fmt: skip
        return dg.AssetCheckResult(
            passed=passed, severity=dg.AssetCheckSeverity.WARN, description=reason,
            metadata={"kappa": shown, "trusted_kappa": "undefined" if kappa is None else f"{kappa:.3f}",
                      "min_kappa": section.min_kappa, "reason": reason},
        )  # fmt: skip

    return judge_validation, judge_agrees_with_humans
