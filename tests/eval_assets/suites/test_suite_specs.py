from pathlib import Path

import pytest

from eval_assets.suites.spec import (
    SuiteSpecError,
    load_suite_spec,
    load_suite_specs,
    parse_suite_spec,
    suite_code_version,
)

VALID = """
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


def test_builtin_suites_load() -> None:
    specs = load_suite_specs()
    assert {"arc_easy", "gsm8k", "humaneval", "mbpp", "mmlu", "assistant_pairwise", "mtbench"} <= set(specs)
    assert specs["assistant_pairwise"].kind == specs["mtbench"].kind == "pairwise"
    assert specs["humaneval"].kind == "code" and specs["humaneval"].samples("smoke") == 2
    assert specs["humaneval"].samples("full") == 10
    assert specs["gsm8k"].kind == "generation" and specs["gsm8k"].sampling is not None
    assert specs["mmlu"].template.num_fewshot == 5


def test_unknown_field_is_named_with_its_file() -> None:
    with pytest.raises(SuiteSpecError) as info:
        parse_suite_spec(VALID + "temprature: 0.5\n", "suites/tiny.yaml")
    assert "suites/tiny.yaml" in str(info.value)
    assert "temprature" in str(info.value)


def test_wrong_type_names_the_nested_field() -> None:
    with pytest.raises(SuiteSpecError, match=r"profiles\.smoke\.limit"):
        parse_suite_spec(VALID.replace("limit: 2", "limit: -3"), "x.yaml")


def test_generation_suite_needs_sampling() -> None:
    text = VALID.replace("kind: likelihood", "kind: generation")
    with pytest.raises(SuiteSpecError, match="sampling"):
        parse_suite_spec(text, "x.yaml")


def test_missing_profile_and_bad_yaml() -> None:
    with pytest.raises(SuiteSpecError, match="smoke"):
        parse_suite_spec(VALID.replace("smoke: {limit: 2}, ", ""), "x.yaml")
    with pytest.raises(SuiteSpecError, match="not valid YAML"):
        parse_suite_spec("name: [unclosed", "x.yaml")


def test_file_name_must_match(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(VALID)
    with pytest.raises(SuiteSpecError, match="named 'other'"):
        load_suite_spec(path)


def test_code_version_tracks_template_changes() -> None:
    spec = parse_suite_spec(VALID, "x")
    bumped = parse_suite_spec(VALID.replace("template: {version: 1}", "template: {version: 2}"), "x")
    assert suite_code_version(spec, "smoke") != suite_code_version(bumped, "smoke")
    assert suite_code_version(spec, "smoke") == suite_code_version(parse_suite_spec(VALID, "y"), "smoke")


def test_code_version_covers_its_own_profile_only() -> None:
    spec = parse_suite_spec(VALID, "x")
    full_grown = parse_suite_spec(VALID.replace("full: {}", "full: {limit: 500}"), "x")
    assert suite_code_version(full_grown, "smoke") == suite_code_version(spec, "smoke"), (
        "editing full leaves smoke"
    )
    assert suite_code_version(full_grown, "full") != suite_code_version(spec, "full")
    smoke_grown = parse_suite_spec(VALID.replace("smoke: {limit: 2}", "smoke: {limit: 3}"), "x")
    assert suite_code_version(smoke_grown, "smoke") != suite_code_version(spec, "smoke"), (
        "a grown profile is new"
    )
    assert suite_code_version(smoke_grown, "full") == suite_code_version(spec, "full")
    assert suite_code_version(spec, "smoke") != suite_code_version(spec, "full")
    with pytest.raises(SuiteSpecError, match="no profile 'medium'"):
        suite_code_version(spec, "medium")


def test_samples_enter_the_code_version_of_the_profiles_they_reach() -> None:
    from eval_assets.suites import load_suite_specs

    humaneval = load_suite_specs()["humaneval"]  # smoke overrides samples (2); full takes sampling.n (10)
    more = humaneval.model_copy(update={"sampling": humaneval.sampling.model_copy(update={"n": 20})})  # type: ignore[union-attr]
    assert suite_code_version(more, "smoke") == suite_code_version(humaneval, "smoke")
    assert suite_code_version(more, "full") != suite_code_version(humaneval, "full")


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(SuiteSpecError, match="no profile 'medium'"):
        parse_suite_spec(VALID, "x").profile("medium")


def test_code_suite_rules() -> None:
    code = (
        VALID.replace("kind: likelihood", "kind: code")
        .replace("metric: acc", "metric: pass_at_k")
        .replace("loader: arc_easy", "loader: humaneval")
    )
    with pytest.raises(SuiteSpecError, match="sampling"):
        parse_suite_spec(code, "x.yaml")
    greedy = code + "sampling: {temperature: 0, n: 5}\n"
    with pytest.raises(SuiteSpecError, match="temperature"):
        parse_suite_spec(greedy, "x.yaml")
    with pytest.raises(SuiteSpecError, match="pass_at_k"):
        parse_suite_spec(VALID.replace("metric: acc", "metric: pass_at_k"), "x.yaml")
    ok = parse_suite_spec(code + "sampling: {temperature: 0.8, n: 5}\n", "x.yaml")
    assert ok.samples("smoke") == 5
