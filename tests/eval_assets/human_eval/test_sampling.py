"""The human-eval sample: deterministic for a seed, strata as declared, disagreements oversampled.

Frames here are written by the tests (small synthetic judge_verdicts / refusal_labels / item_scores rows in
the schemas the judge and red-team stages write)."""

import random

import polars as pl
import pytest

from eval_assets.human_eval import (
    SamplingPolicy,
    allocate,
    checkpoint_strata,
    draw_sample,
    load_sampling_policy,
)

POLICY = SamplingPolicy(version=1, seed=7, per_suite=20, min_per_stratum=2,
                        oversample={"orders_disagree": 3.0, "classifiers_disagree": 3.0})  # fmt: skip


def _item_scores(n_correct: int, n_wrong: int, suite: str = "gsm8k") -> pl.DataFrame:
    rows = [
        {"suite": suite, "item_id": f"q{i}", "correct": i < n_correct, "gold": str(i)}
        for i in range(n_correct + n_wrong)
    ]
    return pl.DataFrame(rows)


def _judge(agree: int, disagree: int, suite: str = "chat") -> pl.DataFrame:
    rows = []
    for i in range(agree):
        verdict = "candidate" if i % 3 else "opponent"
        rows += [
            {"suite": suite, "item_id": f"p{i}", "order": o, "verdict": verdict, "opponent": "prod"}
            for o in ("ab", "ba")
        ]
    for i in range(agree, agree + disagree):
        rows += [{"suite": suite, "item_id": f"p{i}", "order": "ab", "verdict": "candidate", "opponent": "prod"},
                 {"suite": suite, "item_id": f"p{i}", "order": "ba", "verdict": "opponent", "opponent": "prod"}]  # fmt: skip
    return pl.DataFrame(rows)


def _sample(strata: pl.DataFrame, kinds: dict[str, str], policy: SamplingPolicy = POLICY) -> pl.DataFrame:
    return draw_sample(strata, checkpoint="ckpt-a", kinds=kinds, policy=policy)


def test_generation_sample_is_stratified_by_the_scorer_and_proportional() -> None:
    scores = _item_scores(30, 70)
    strata = checkpoint_strata(kinds={"gsm8k": "generation"}, item_scores=scores, policy=POLICY)
    sample = _sample(strata, {"gsm8k": "generation"})
    counts = dict(sample.group_by("stratum").len().iter_rows())
    assert counts == {"scored_correct": 6, "scored_incorrect": 14}
    # every sampled item really is in the stratum it claims, and the weight undoes the sampling rate
    correct = {r["item_id"]: r["correct"] for r in scores.iter_rows(named=True)}
    for row in sample.iter_rows(named=True):
        assert correct[row["item_id"]] == (row["stratum"] == "scored_correct")
        assert row["weight"] == pytest.approx(row["stratum_size"] / row["stratum_sampled"])
        assert row["reason"].startswith(row["stratum"]) and f"of {row['stratum_size']} items" in row["reason"]
    assert sample["item_id"].n_unique() == 20
    assert sample.select((pl.col("weight")).sum()).item() == pytest.approx(100)


def test_sample_is_deterministic_for_a_seed_and_ignores_row_order() -> None:
    scores = _item_scores(40, 60)
    kinds = {"gsm8k": "generation"}
    first = _sample(checkpoint_strata(kinds=kinds, item_scores=scores, policy=POLICY), kinds)
    shuffled = scores.sample(fraction=1.0, shuffle=True, seed=3)
    again = _sample(checkpoint_strata(kinds=kinds, item_scores=shuffled, policy=POLICY), kinds)
    assert first.equals(again)
    other = _sample(checkpoint_strata(kinds=kinds, item_scores=scores, policy=POLICY), kinds,
                    POLICY.model_copy(update={"seed": 8}))  # fmt: skip
    assert set(other["item_id"]) != set(first["item_id"])
    # a larger size only adds items (prefix-stable within strata)
    bigger = _sample(checkpoint_strata(kinds=kinds, item_scores=scores, policy=POLICY), kinds,
                     POLICY.model_copy(update={"per_suite": 40}))  # fmt: skip
    assert set(first["item_id"]) <= set(bigger["item_id"])


def test_judge_disagreements_are_oversampled() -> None:
    judge = _judge(agree=90, disagree=10)
    kinds = {"chat": "pairwise"}
    strata = checkpoint_strata(kinds=kinds, item_scores=pl.DataFrame(), judge_verdicts=judge, policy=POLICY)
    population = dict(strata.group_by("stratum").len().iter_rows())
    assert population == {"judge_candidate": 60, "judge_opponent": 30, "orders_disagree": 10}
    sample = _sample(strata, kinds)
    counts = dict(sample.group_by("stratum").len().iter_rows())
    assert sum(counts.values()) == 20
    # 10 % of the items, weight 3: (10*3)/(60+30+30) of 20 = 5 items, i.e. 25 % of the sample
    assert counts["orders_disagree"] == 5
    assert counts["judge_candidate"] == 10 and counts["judge_opponent"] == 5
    disagreeing = {f"p{i}" for i in range(90, 100)}
    assert set(sample.filter(pl.col("stratum") == "orders_disagree")["item_id"]) <= disagreeing
    assert "oversampled ×3" in sample.filter(pl.col("stratum") == "orders_disagree")["reason"][0]


def test_judge_error_is_its_own_stratum() -> None:
    judge = pl.DataFrame([
        {"suite": "chat", "item_id": "p0", "order": "ab", "verdict": "error", "opponent": "prod"},
        {"suite": "chat", "item_id": "p0", "order": "ba", "verdict": "candidate", "opponent": "prod"},
        {"suite": "chat", "item_id": "p1", "order": "ab", "verdict": "tie", "opponent": "prod"},
        {"suite": "chat", "item_id": "p1", "order": "ba", "verdict": "tie", "opponent": "prod"},
    ])  # fmt: skip
    strata = checkpoint_strata(
        kinds={"chat": "pairwise"}, item_scores=pl.DataFrame(), judge_verdicts=judge, policy=POLICY
    )
    assert dict(strata.select("item_id", "stratum").iter_rows()) == {"p0": "judge_error", "p1": "judge_tie"}


def test_refusal_strata_by_label_and_classifier_disagreement() -> None:
    rows = []
    for i in range(40):
        label = "refusal" if i < 10 else "compliance"
        second = label if i < 36 else ("compliance" if label == "refusal" else "refusal")
        rows += [{"suite": "harm", "item_id": f"h{i}", "category": "c", "family": "f", "label": label, "classifier": "a-rubric"},
                 {"suite": "harm", "item_id": f"h{i}", "category": "c", "family": "f", "label": second, "classifier": "b-keywords"}]  # fmt: skip
    labels = pl.DataFrame(rows)
    strata = checkpoint_strata(
        kinds={"harm": "refusal"}, item_scores=pl.DataFrame(), refusal_labels=labels, policy=POLICY
    )
    population = dict(strata.group_by("stratum").len().iter_rows())
    assert population == {"classifier_refusal": 10, "classifier_compliance": 26, "classifiers_disagree": 4}
    sample = _sample(strata, {"harm": "refusal"})
    counts = dict(sample.group_by("stratum").len().iter_rows())
    assert counts["classifiers_disagree"] == 4  # weight 3 asks for more than the 4 there are: all of them
    assert sum(counts.values()) == 20
    # the wide form (second_label beside label) gives the same strata
    wide = (
        labels.filter(pl.col("classifier") == "a-rubric")
        .with_columns(labels.filter(pl.col("classifier") == "b-keywords")["label"].alias("second_label"))
        .drop("classifier")
    )
    wide_strata = checkpoint_strata(
        kinds={"harm": "refusal"}, item_scores=pl.DataFrame(), refusal_labels=wide, policy=POLICY
    )
    assert wide_strata.sort("item_id").equals(strata.sort("item_id"))


def test_refusal_variants_are_sampled_and_labelled_as_refusal() -> None:
    labels = pl.DataFrame(
        [
            {"suite": "redteam_harmful", "item_id": f"h{i}", "label": "refusal", "classifier": "c"}
            for i in range(3)
        ]
    )
    kinds = {"redteam_harmful": "refusal_harmful", "arc_easy": "likelihood"}
    strata = checkpoint_strata(kinds=kinds, item_scores=pl.DataFrame(), refusal_labels=labels, policy=POLICY)
    sample = _sample(strata, kinds)
    assert set(sample["kind"]) == {"refusal"} and set(sample["suite_kind"]) == {"refusal_harmful"}


def test_only_sampled_kinds_and_unjudged_pairwise_falls_back_to_scores() -> None:
    scores = pl.concat([_item_scores(3, 3, "arc_easy"), _item_scores(2, 2, "chat")])
    kinds = {"arc_easy": "likelihood", "chat": "pairwise"}
    strata = checkpoint_strata(kinds=kinds, item_scores=scores, policy=POLICY)
    assert set(strata["suite"]) == {"chat"}
    assert set(strata["stratum"]) == {"scored_correct", "scored_incorrect"}


def test_allocate_respects_totals_caps_and_minimums() -> None:
    rng = random.Random(0)
    for _ in range(300):
        sizes = {f"s{i}": rng.randint(0, 40) for i in range(rng.randint(1, 6))}
        weights = {s: rng.choice([1.0, 1.0, 3.0, 0.5]) for s in sizes}
        total, minimum = rng.randint(0, 60), rng.randint(0, 3)
        take = allocate(sizes, weights, total, minimum)
        assert sum(take.values()) == min(total, sum(sizes.values()))
        assert all(0 <= take[s] <= sizes[s] for s in sizes)
        if sum(min(minimum, n) for n in sizes.values()) <= total:
            assert all(take[s] >= min(minimum, sizes[s]) for s in sizes)


def test_policy_file_is_valid_and_errors_name_the_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    policy = load_sampling_policy()
    assert policy.size("anything") == policy.per_suite and policy.weight("orders_disagree") > 1
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: 1\nseed: 1\nper_suite: 0\nsurprise: 1\n")
    with pytest.raises(
        ValueError,
        match=r"policy.yaml: invalid human-eval sampling policy: field `per_suite`.*field `surprise`",
    ):
        load_sampling_policy(bad)
