"""The component registry: unknown names list the registered choices, a new scorer is one module's worth of code
and one registration, duplicates are refused, kinds and metrics must fit together."""

from pathlib import Path

import pytest

from eval_assets.kinds import (
    KINDS,
    LOADERS,
    SCORERS,
    GenerationOutput,
    ItemScore,
    NoParams,
    Registry,
    ScorerEntry,
    UnknownComponentError,
    get_kind,
    get_scorer,
    loaders_for,
    register_scorer,
    scorers_for,
)
from eval_assets.scoring import score_items
from eval_assets.suites.items import GenerationItem
from eval_assets.suites.spec import SuiteSpecError, parse_suite_spec

SPEC = """
name: tiny
version: 1
description: d
kind: likelihood
loader: arc_easy
metric: acc
scorer_version: 1
template: {version: 1}
profiles: {smoke: {limit: 2}, full: {}}
"""


def test_builtin_components_are_registered() -> None:
    assert {"code", "generation", "likelihood", "pairwise"} <= set(KINDS.names())
    assert [stage.name for stage in get_kind("pairwise").stages] == ["judge_verdicts"]
    assert get_kind("pairwise").head_to_head and not get_kind("generation").head_to_head
    assert scorers_for("pairwise") == ["win_rate"] and "mtbench" in loaders_for("pairwise")
    assert {"acc", "exact_match", "regex", "numeric", "contains", "pass_at_k"} <= set(SCORERS.names())
    assert {"file", "lm_eval", "arc_easy", "mmlu", "gsm8k", "humaneval", "mbpp"} <= set(LOADERS.names())
    assert scorers_for("likelihood") == ["acc"]
    assert scorers_for("code") == ["pass_at_k"]
    assert {"exact_match", "regex", "numeric", "contains"} <= set(scorers_for("generation"))
    assert "file" in loaders_for("generation") and "file" not in loaders_for("code")
    assert [stage.name for stage in get_kind("code").stages] == ["code_executions"]
    assert get_kind("likelihood").stages == ()


@pytest.mark.parametrize(
    ("field", "value", "choices"),
    [
        ("kind", "multiple_choice", "registered kinds: code, generation, likelihood"),
        ("loader", "hellaswag", "registered loaders: arc_easy, file,"),
        ("metric", "accuracy", "registered metrics: acc, contains,"),
    ],
)
def test_unknown_component_names_the_file_field_and_choices(field: str, value: str, choices: str) -> None:
    original = {"kind": "likelihood", "loader": "arc_easy", "metric": "acc"}[field]
    with pytest.raises(SuiteSpecError) as info:
        parse_suite_spec(SPEC.replace(f"{field}: {original}", f"{field}: {value}"), "suites/tiny.yaml")
    message = str(info.value)
    assert "suites/tiny.yaml" in message and f"field `{field}`" in message
    assert value in message and choices in message


def test_metric_must_fit_the_kind() -> None:
    with pytest.raises(
        SuiteSpecError,
        match=r"field `metric`: metric `regex` does not apply to kind likelihood; metrics for likelihood: acc",
    ):
        parse_suite_spec(SPEC.replace("metric: acc", "metric: regex"), "x.yaml")


def test_loader_must_fit_the_kind() -> None:
    text = SPEC.replace("kind: likelihood", "kind: generation").replace("metric: acc", "metric: exact_match")
    with pytest.raises(
        SuiteSpecError,
        match=r"field `loader`: loader `arc_easy` does not feed generation suites; loaders for generation: file, gsm8k, lm_eval",
    ):
        parse_suite_spec(text + "sampling: {max_new_tokens: 8}\n", "x.yaml")


def test_registry_lookup_errors_list_choices() -> None:
    with pytest.raises(UnknownComponentError, match="registered: code, generation, likelihood"):
        get_kind("judge")
    assert "judge" not in KINDS


def test_a_component_name_is_taken_once() -> None:
    registry: Registry[str] = Registry("thing")
    registry.add("a", "first")
    registry.add("a", "first")  # the same component again is harmless (module re-import)
    with pytest.raises(ValueError, match="thing 'a' is registered twice"):
        registry.add("a", "second")


def _first_word(item: GenerationItem, output: GenerationOutput) -> ItemScore:
    word = (output.text.split() or [""])[0].strip(".,")
    return ItemScore(word, item.gold, word == item.gold, float(word == item.gold), bool(word))


def test_a_new_scorer_is_its_function_and_one_registration(tmp_path: Path) -> None:
    """No change to scoring.py, suite_assets.py or the spec model: register it, name it in a spec, score."""
    if "first_word" not in SCORERS:
        register_scorer(
            ScorerEntry(
                name="first_word", kinds=frozenset({"generation"}), build=lambda _params: _first_word,
                params=NoParams, description="the first word of the completion is the answer",
            )
        )  # fmt: skip
    assert get_scorer("first_word").kinds == {"generation"}
    spec = parse_suite_spec(
        SPEC.replace("kind: likelihood", "kind: generation")
        .replace("metric: acc", "metric: first_word")
        .replace("loader: arc_easy", "loader: gsm8k")
        + "sampling: {max_new_tokens: 8}\n",
        "x.yaml",
    )
    import polars as pl

    items = [
        GenerationItem("a", (("user", "q"),), gold="Paris"),
        GenerationItem("b", (("user", "q"),), gold="Rome"),
    ]
    predictions = pl.DataFrame(
        {
            "checkpoint": ["c", "c"],
            "item_id": ["a", "b"],
            "output": ['{"text": "Paris, of course."}', '{"text": "Milan"}'],
        }
    )
    scores = score_items(spec, items, predictions)
    assert scores["correct"].to_list() == [True, False]
    assert scores["prediction"].to_list() == ["Paris", "Milan"]


def test_scorer_parameters_are_validated_with_their_field_path() -> None:
    text = (
        SPEC.replace("kind: likelihood", "kind: generation")
        .replace("metric: acc", "metric: regex")
        .replace("loader: arc_easy", "loader: gsm8k")
        + "sampling: {max_new_tokens: 8}\n"
    )
    with pytest.raises(SuiteSpecError, match=r"field `scorer.pattern`: Field required"):
        parse_suite_spec(text, "x.yaml")
    with pytest.raises(SuiteSpecError, match=r"field `scorer`: .*pattern has 0 capture group"):
        parse_suite_spec(text + "scorer: {pattern: 'answer is \\d+'}\n", "x.yaml")
    with pytest.raises(SuiteSpecError, match=r"field `scorer.pattern`: .*not a valid regular expression"):
        parse_suite_spec(text + "scorer: {pattern: 'answer is (\\d+'}\n", "x.yaml")
    with pytest.raises(SuiteSpecError, match=r"field `scorer.patern`: Extra inputs are not permitted"):
        parse_suite_spec(text + "scorer: {pattern: '(x)', patern: 1}\n", "x.yaml")
    assert (
        parse_suite_spec(text + "scorer: {pattern: 'answer is (\\d+)'}\n", "x.yaml").scorer_params().group
        == 1
    )
    with pytest.raises(SuiteSpecError, match=r"field `scorer.nothing`: Extra inputs"):
        parse_suite_spec(SPEC + "scorer: {nothing: 1}\n", "x.yaml")
