"""Every built-in scorer on hand-made outputs: what it reads, when it is right, when the answer is unparsed."""

import math

import numpy as np
import polars as pl
import pytest

from eval_assets import stats
from eval_assets.kinds import (
    GenerationOutput,
    LikelihoodOutput,
    MalformedPredictionError,
    get_scorer,
)
from eval_assets.kinds.code import score_code
from eval_assets.kinds.scorers.match import ContainsParams, ExactMatchParams, contains, exact_match
from eval_assets.kinds.scorers.numeric import NumericParams, numeric
from eval_assets.kinds.scorers.regex import RegexParams, regex
from eval_assets.scoring import score_interval, summarize
from eval_assets.suites import load_suite_specs
from eval_assets.suites.items import GenerationItem, LikelihoodItem


def gen(gold: str) -> GenerationItem:
    return GenerationItem(item_id="i", messages=(("user", "q"),), gold=gold)


def out(text: str) -> GenerationOutput:
    return GenerationOutput(text=text)


def test_acc_is_the_argmax_and_checks_the_choice_count() -> None:
    acc = get_scorer("acc").build(get_scorer("acc").params())
    item = LikelihoodItem("i", "ctx", (" a", " b", " c"), gold=1)
    score = acc(item, LikelihoodOutput(logprobs=(-3.0, -1.0, -2.0), greedy=(False, True, False)))
    assert (score.prediction, score.gold, score.correct, score.score, score.parsed) == (
        "1",
        "1",
        True,
        1.0,
        True,
    )
    assert not acc(
        item, LikelihoodOutput(logprobs=(-1.0, -1.0, -2.0), greedy=(True,) * 3)
    ).correct  # tie: first
    with pytest.raises(MalformedPredictionError, match="2 log-likelihoods for 3 choices"):
        acc(item, LikelihoodOutput(logprobs=(-1.0, -2.0), greedy=(True, False)))


@pytest.mark.parametrize(
    ("params", "gold", "text", "expected"),
    [
        ({}, "18", "so 9 + 9 = 18. The answer is 18.", ("18", True, True)),  # auto: the gold is a number
        ({}, "18", "The answer is 1,8.", ("18", True, True)),
        ({}, "18", "no idea", ("", False, False)),
        ({}, "Paris", "  Paris \n", ("Paris", True, True)),  # auto: text
        ({}, "Paris", "Paris, France", ("Paris, France", False, True)),
        ({"answer": "first_line"}, "Paris", "\nParis\nbecause ...", ("Paris", True, True)),
        ({"answer": "text", "ignore_case": True}, "paris", "PARIS", ("PARIS", True, True)),
        ({"answer": "text"}, "7", "7 apples", ("7 apples", False, True)),
        ({"answer": "final_number"}, "7", "", ("", False, False)),
        ({"answer": "text"}, "x", "   ", ("", False, False)),
    ],
)
def test_exact_match(
    params: dict[str, object], gold: str, text: str, expected: tuple[str, bool, bool]
) -> None:
    score = exact_match(ExactMatchParams.model_validate(params))(gen(gold), out(text))
    assert (score.prediction, score.correct, score.parsed) == expected
    assert score.score == float(expected[1]) and score.gold == gold


def test_exact_match_keeps_gsm8k_behaviour() -> None:
    """The built-in gsm8k spec's `metric: exact_match` (no parameters) is the final-number match it always was."""
    spec = load_suite_specs()["gsm8k"]
    assert spec.metric == "exact_match" and spec.scorer == {}
    scorer = get_scorer("exact_match").build(spec.scorer_params())
    assert scorer(gen("1234"), out("The answer is $1,234.")).correct
    assert not scorer(gen("5"), out("The answer is 50.")).correct


def test_contains() -> None:
    score = contains(ContainsParams())(gen("blue"), out("The sky is blue today."))
    assert score.correct and score.parsed
    assert not contains(ContainsParams())(gen("Blue"), out("the sky is blue")).correct
    assert contains(ContainsParams(ignore_case=True))(gen("Blue"), out("the sky is blue")).correct
    assert not contains(ContainsParams())(gen("blue"), out("")).parsed


def test_regex_capture_group() -> None:
    scorer = regex(RegexParams(pattern=r"answer is (\w+)"))
    hit = scorer(gen("blue"), out("I think the answer is blue, or the answer is red"))
    assert (hit.prediction, hit.correct, hit.parsed) == ("blue", True, True)
    last = regex(RegexParams(pattern=r"answer is (\w+)", occurrence="last"))(
        gen("blue"), out("answer is blue; answer is red")
    )
    assert (last.prediction, last.correct) == ("red", False)
    miss = scorer(gen("blue"), out("blue"))
    assert (miss.prediction, miss.correct, miss.parsed) == ("", False, False)
    named = regex(RegexParams(pattern=r"\[(?P<ans>[A-D])\]", group="ans", ignore_case=True))(
        gen("b"), out("pick [B]")
    )
    assert named.correct and named.prediction == "B"


@pytest.mark.parametrize(
    "bad",
    [
        {"pattern": "(unclosed"},
        {"pattern": "no group"},
        {"pattern": "(a)", "group": 2},
        {"pattern": "(a)", "group": "x"},
    ],
)
def test_regex_parameters_are_checked(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RegexParams.model_validate(bad)


@pytest.mark.parametrize(
    ("params", "gold", "text", "expected"),
    [
        ({}, "42", "The answer is 42.", ("42", True, True)),
        ({}, "42", "first 41, then 42.0", ("42", True, True)),
        ({}, "3.14", "about 3.1416", ("3.1416", False, True)),
        ({"abs_tol": 0.01}, "3.14", "about 3.1416", ("3.1416", True, True)),
        ({"rel_tol": 0.05}, "1000", "roughly 1,040", ("1040", True, True)),
        ({"rel_tol": 0.01}, "1000", "roughly 1,040", ("1040", False, True)),
        ({"pattern": r"= (\S+)$"}, "12", "3 * 4 = 12", ("12", True, True)),
        ({"pattern": r"= (\S+)$"}, "12", "twelve", ("", False, False)),
        ({}, "-2", "The answer is -2", ("-2", True, True)),
        ({}, "5", "no number here", ("", False, False)),
    ],
)
def test_numeric_tolerance(
    params: dict[str, object], gold: str, text: str, expected: tuple[str, bool, bool]
) -> None:
    score = numeric(NumericParams.model_validate(params))(gen(gold), out(text))
    assert (score.prediction, score.correct, score.parsed) == expected


def test_numeric_refuses_a_reference_that_is_not_a_number() -> None:
    entry = get_scorer("numeric")
    assert entry.check_gold is not None
    with pytest.raises(ValueError, match="not a number"):
        entry.check_gold(NumericParams(), "forty-two")
    with pytest.raises(ValueError, match="not a number"):
        numeric(NumericParams())(gen("forty-two"), out("42"))
    with pytest.raises(ValueError, match="capture group"):
        NumericParams(pattern="no group")


def _executions(rows: list[tuple[str, int, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "task_id": [r[0] for r in rows],
            "sample_index": [r[1] for r in rows],
            "status": [r[2] for r in rows],
            "passed": [r[2] == "passed" for r in rows],
            "model_hash": ["m"] * len(rows),
        }
    )


def test_code_scores_exclude_and_count_infrastructure_errors() -> None:
    spec = load_suite_specs()["humaneval"]
    executions = _executions(
        [
            ("A", 0, "passed"), ("A", 1, "error"),    # one sample errored: pass@1 from the other
            ("B", 0, "failed"), ("B", 1, "timeout"),  # the model's failures count
            ("C", 0, "error"), ("C", 1, "error"),     # every sample errored: the problem is excluded
        ]
    )  # fmt: skip
    scored = score_code(spec, "ckpt", executions)
    frame = scored.item_scores
    assert frame["item_id"].to_list() == ["A", "B"]
    assert frame["score"].to_list() == [1.0, 0.0]
    assert frame["parsed"].all(), "a sandbox error is not an unparsed answer"
    assert frame["prediction"].to_list() == ["1/1 passed (1 errored)", "0/2 passed"]
    assert (scored.n_total, scored.errors, scored.binary, scored.metric) == (6, 3, False, "pass@1")
    assert scored.details["error_samples"] == 3 and scored.details["problems_excluded"] == ["C"]
    summary = summarize(
        spec, scored, checkpoint="ckpt", profile="smoke", suite_code_version="v", model_hash="m"
    )
    assert (summary["n"], summary["n_total"], summary["errors"], summary["unparsed"]) == (2, 6, 3, 0)
    assert summary["error_rate"] == pytest.approx(0.5)
    assert summary["score"] == pytest.approx(0.5), "pass@1 is the mean over problems of their c/n"
    assert summary["ci_method"] == "wilson-clustered"


def test_an_all_failed_code_run_keeps_an_upper_bound() -> None:
    """Five problems × two samples, none passed: a bootstrap says [0, 0]; the clustered Wilson interval
    treats the two samples of a problem as one (fully correlated) and still bounds pass@1 from above."""
    spec = load_suite_specs()["humaneval"]
    executions = _executions([(task, index, "failed") for task in "ABCDE" for index in (0, 1)])
    scored = score_code(spec, "ckpt", executions)
    summary = summarize(
        spec, scored, checkpoint="ckpt", profile="smoke", suite_code_version="v", model_hash="m"
    )
    assert summary["score"] == 0.0 and summary["ci_low"] == 0.0
    wilson_of_problems = stats.wilson_interval(0, 5)
    assert summary["ci_high"] == pytest.approx(wilson_of_problems.high) and summary["ci_high"] > 0.4


def test_code_scores_when_nothing_ran() -> None:
    spec = load_suite_specs()["humaneval"]
    scored = score_code(spec, "ckpt", _executions([("A", 0, "error")]))
    summary = summarize(
        spec, scored, checkpoint="ckpt", profile="smoke", suite_code_version="v", model_hash="m"
    )
    assert summary["n"] == 0 and summary["errors"] == 1 and summary["error_rate"] == 1.0
    assert math.isnan(summary["score"]) and summary["ci_method"].startswith("none")


def test_binary_scores_get_a_wilson_interval() -> None:
    all_wrong = score_interval(np.zeros(50), binary=True)
    assert all_wrong is not None and all_wrong.method == "wilson"
    assert all_wrong.low == 0.0 and all_wrong.high > 0.05, "a bootstrap would say [0, 0]"
    fractional = score_interval(np.array([0.0, 0.5, 1.0, 0.5]), binary=False)
    assert fractional is not None and fractional.method == "bootstrap-percentile" and fractional.seed == 0
    assert score_interval(np.array([]), binary=True) is None
