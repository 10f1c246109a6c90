"""The one configuration surface: precedence and sources, errors that name the file and the field, secrets
that never leave their variable, and the CLI and the Dagster loader building the same resources."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from evalgate_testing import tiny_specs

from eval_assets.cli import build_parser, main
from eval_assets.config import ConfigError, leaf_paths, load_config
from eval_assets.config_resources import PASSTHROUGH, config_digest, resources_from_config
from eval_assets.definitions import definitions_from_config
from resources.evalgate import CodeSandbox, EvalgateHome, ModelRunner, SuiteSettings

#: A recognisable secret: it must appear in no output, message, definition or metadata.
CANARY = "sk-evalgate-CANARY-7f3a9c1e5b"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {"EVALGATE_HOME": str(home), **extra}


def test_precedence_flag_over_env_over_file_over_default(home: Path) -> None:
    _write(
        home / "evalgate.yaml",
        "version: 1\nmodel_runner: {batch_size: 3, device: cpu}\nsandbox: {backend: modal}\n",
    )
    env = _env(home, EVALGATE_MODEL_RUNNER__BATCH_SIZE="5")
    file_source = f"file {home / 'evalgate.yaml'}"

    effective = load_config(environ=env)
    assert effective.config.model_runner.batch_size == 5
    assert effective.sources["model_runner.batch_size"] == "env EVALGATE_MODEL_RUNNER__BATCH_SIZE"
    assert (effective.config.model_runner.device, effective.sources["model_runner.device"]) == (
        "cpu",
        file_source,
    )
    assert (effective.config.sandbox.backend, effective.sources["sandbox.backend"]) == ("modal", file_source)
    assert (effective.config.model_runner.dtype, effective.sources["model_runner.dtype"]) == (
        "auto",
        "default",
    )
    assert effective.file == home / "evalgate.yaml"

    flagged = load_config({"model_runner.batch_size": 7, "suites.profile": None}, environ=env)
    assert (
        flagged.config.model_runner.batch_size == 7 and flagged.sources["model_runner.batch_size"] == "flag"
    )
    assert flagged.sources["suites.profile"] == "default", "a flag not given (None) is no override"
    assert set(flagged.sources) == set(leaf_paths())


def test_legacy_variables_still_work_and_the_systematic_name_wins(home: Path, tmp_path: Path) -> None:
    env = _env(
        home, EVALGATE_PROFILE="full", EVALGATE_SLACK_CHANNEL="#ops", EVALGATE_SUITES_DIR=str(tmp_path)
    )
    effective = load_config(environ=env)
    assert (
        effective.config.suites.profile == "full"
        and effective.sources["suites.profile"] == "env EVALGATE_PROFILE"
    )
    assert effective.config.slack.channel == "#ops"
    assert effective.path("suites_dir") == tmp_path.resolve()
    both = load_config(environ={**env, "EVALGATE_SUITES__PROFILE": "smoke"})
    assert (
        both.config.suites.profile == "smoke"
        and both.sources["suites.profile"] == "env EVALGATE_SUITES__PROFILE"
    )


def test_structured_values_from_the_environment_are_yaml(home: Path) -> None:
    env = _env(
        home, EVALGATE_SUITES__PROFILES="{arc_easy: full}", EVALGATE_RESULTS__STORAGE_OPTIONS="{region: eu}"
    )
    effective = load_config(environ=env)
    assert effective.config.suites.profiles == {"arc_easy": "full"}
    assert effective.profile_for("arc_easy") == "full" and effective.profile_for("gsm8k") == "smoke"
    assert effective.config.results.storage_options == {"region": "eu"}


def test_evalgate_config_names_the_file_and_relative_paths_are_the_files(tmp_path: Path, home: Path) -> None:
    config = _write(
        tmp_path / "team" / "evalgate.yaml", "version: 1\npolicy: policy/gate.yaml\nhome: state\n"
    )
    effective = load_config(environ=_env(home, EVALGATE_CONFIG=str(config)) | {"EVALGATE_HOME": ""})
    assert effective.path("policy") == (tmp_path / "team" / "policy" / "gate.yaml").resolve()
    assert effective.home == (tmp_path / "team" / "state").resolve()
    with pytest.raises(ConfigError, match=r"missing\.yaml: no such file \(named by \$EVALGATE_CONFIG\)"):
        load_config(environ={"EVALGATE_CONFIG": str(tmp_path / "missing.yaml")})


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        (
            "version: 1\nmodel_runner: {batch_sise: 4}\n",
            "model_runner.batch_sise",
            "Extra inputs are not permitted",
        ),
        ("version: 1\nmodel_runner: {batch_size: 0}\n", "model_runner.batch_size", "greater than 0"),
        ("version: 1\nsandbox: {backend: docker}\n", "sandbox.backend", "'local' or 'modal'"),
        ("version: 2\n", "version", "reads config version 1, not 2"),
        ("version: 1\nslack: {token: {name: X}}\n", "slack.token.env", "Field required"),
        ("version: 1\nprofile: full\n", "profile", "Extra inputs are not permitted"),
        ("version: 1\nhome: /elsewhere\n", "home", "found through the home it would set"),
    ],
)
def test_a_malformed_config_names_the_file_and_the_field(
    home: Path, text: str, field: str, says: str
) -> None:
    path = _write(home / "evalgate.yaml", text)
    with pytest.raises(ConfigError) as raised:
        load_config(environ=_env(home))
    message = str(raised.value)
    assert f"{path}: field `{field}`" in message and says in message, message


def test_bad_yaml_and_a_bad_environment_value_say_where(home: Path) -> None:
    path = _write(home / "evalgate.yaml", "version: 1\nsandbox: {backend: local\n")
    with pytest.raises(ConfigError, match=rf"{path}: not valid YAML"):
        load_config(environ=_env(home))
    path.write_text("version: 1\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"env EVALGATE_MODEL_RUNNER__BATCH_SIZE: field `model_runner.batch_size`"
    ):
        load_config(environ=_env(home, EVALGATE_MODEL_RUNNER__BATCH_SIZE="many"))


def test_a_secret_written_in_the_file_is_refused_without_repeating_it(home: Path) -> None:
    _write(home / "evalgate.yaml", f"version: 1\nmodel_runner: {{openai_api_key: {CANARY}}}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(environ=_env(home))
    assert "field `model_runner.openai_api_key`: a secret is named by its environment variable" in str(
        raised.value
    )
    assert CANARY not in str(raised.value)
    # pasted where the variable's name belongs: not a name, refused, and not echoed either
    (home / "evalgate.yaml").write_text(
        f"version: 1\nslack: {{token: {{env: {CANARY}}}}}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(environ=_env(home))
    assert "field `slack.token.env`: must be an environment variable name" in str(raised.value)
    assert CANARY not in str(raised.value)


def test_secrets_cannot_be_overridden_through_evalgate_variables(home: Path) -> None:
    effective = load_config(
        environ=_env(home, EVALGATE_MODEL_RUNNER__OPENAI_API_KEY=CANARY, EVALGATE_SLACK__TOKEN=CANARY)
    )
    assert effective.config.model_runner.openai_api_key is None
    assert effective.config.slack.token.env == "SLACK_BOT_TOKEN"
    assert CANARY not in json.dumps([list(row) for row in effective.shown()])


def test_credentials_in_storage_options_are_refused(home: Path) -> None:
    _write(home / "evalgate.yaml", "version: 1\nresults: {storage_options: {AWS_SECRET_ACCESS_KEY: x}}\n")
    with pytest.raises(
        ConfigError, match=r"field `results.storage_options`: .*is a credential: set it in the environment"
    ):
        load_config(environ=_env(home))


def test_config_show_masks_secrets_and_says_where_each_value_came_from(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(
        home / "evalgate.yaml",
        "version: 1\nmodel_runner: {openai_api_key: {env: EVALGATE_TEST_OPENAI_KEY}}\n",
    )
    monkeypatch.setenv("EVALGATE_TEST_OPENAI_KEY", CANARY)
    monkeypatch.setenv("SLACK_BOT_TOKEN", CANARY + "-slack")
    monkeypatch.setenv("EVALGATE_SANDBOX__BACKEND", "modal")
    assert main(["--home", str(home), "config", "show", "--batch-size", "4"]) == 0
    shown = capsys.readouterr().out
    assert CANARY not in shown
    lines = {line.split()[0]: line for line in shown.splitlines() if line.strip()}
    assert "$EVALGATE_TEST_OPENAI_KEY (set)" in lines["model_runner.openai_api_key"]
    assert lines["model_runner.openai_api_key"].endswith(f"file {home.resolve() / 'evalgate.yaml'}")
    assert "$SLACK_BOT_TOKEN (set)" in lines["slack.token"]
    assert lines["sandbox.backend"].split()[1:] == ["modal", "env", "EVALGATE_SANDBOX__BACKEND"]
    assert lines["model_runner.batch_size"].split()[1:] == ["4", "flag"]
    assert lines["home"].split()[1:] == [str(home.resolve()), "flag"]
    assert main(["--home", str(home), "config", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert CANARY not in json.dumps(data)
    row = next(r for r in data["settings"] if r["setting"] == "sandbox.backend")
    assert row == {"setting": "sandbox.backend", "value": "modal", "source": "env EVALGATE_SANDBOX__BACKEND",
                   "env": ["EVALGATE_SANDBOX__BACKEND"]}  # fmt: skip


def test_the_resources_carry_secrets_as_env_vars_and_hide_them(home: Path) -> None:
    _write(
        home / "evalgate.yaml",
        "version: 1\nmodel_runner: {openai_api_key: {env: EVALGATE_TEST_OPENAI_KEY}}\n",
    )
    resources = resources_from_config(load_config(environ=_env(home)))
    runner = resources["model_runner"]
    assert isinstance(runner, ModelRunner)
    assert (
        isinstance(runner.openai_api_key, dg.EnvVar)
        and runner.openai_api_key.env_var_name == "EVALGATE_TEST_OPENAI_KEY"
    )
    # what a run holds once Dagster resolved the variable
    resolved = runner.model_copy(update={"openai_api_key": CANARY})
    assert CANARY not in repr(resolved) and CANARY not in str(resolved)


def _effective(home: Path, text: str, **env: str) -> Any:
    _write(home / "evalgate.yaml", text)
    return load_config(environ=_env(home, **env))


def test_definitions_are_built_for_each_suites_configured_profile(home: Path) -> None:
    specs = tiny_specs(arc=2, gsm8k=1)
    effective = _effective(home, "version: 1\nsuites: {profile: smoke, profiles: {arc_easy: full}}\n")
    defs = definitions_from_config(effective, specs=specs)
    graph = defs.resolve_asset_graph()
    from eval_assets.suites.spec import suite_code_version

    def version(key: str) -> str | None:
        return graph.get(dg.AssetKey.from_user_string(key)).code_version

    assert version("predictions/arc_easy") == suite_code_version(specs["arc_easy"], "full")
    assert version("predictions/gsm8k") == suite_code_version(specs["gsm8k"], "smoke")
    settings = defs.resources["suite_settings"]
    assert isinstance(settings, SuiteSettings) and settings.profile_for("arc_easy") == "full"
    tags = defs.get_sensor_def("evaluate_checkpoints").run_tags  # type: ignore[attr-defined]
    assert tags == {"evalgate/config_digest": config_digest(effective)}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("suites: {profiles: {arc_eazy: full}}", "field `suites.profiles.arc_eazy`: no suite 'arc_eazy'"),
        ("suites: {profile: medium}", "field `suites.profile`: suite 'arc_easy' has no profile 'medium'"),
    ],
)
def test_a_profile_or_suite_that_does_not_exist_is_refused_naming_the_field(
    home: Path, text: str, says: str
) -> None:
    effective = _effective(home, f"version: 1\n{text}\n")
    with pytest.raises(ValueError, match=r"evalgate\.yaml: " + says.replace("(", r"\(")):
        definitions_from_config(effective, specs=tiny_specs(arc=2, gsm8k=1))


def test_the_cli_and_the_dagster_loader_build_the_same_resources(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eval_assets import definitions
    from eval_assets.cli import _definitions

    _write(
        home / "evalgate.yaml",
        "version: 1\nsandbox: {backend: modal, workers: 2}\nmodel_runner: {device: cpu}\n",
    )
    monkeypatch.setenv("EVALGATE_HOME", str(home))
    monkeypatch.setenv("EVALGATE_MODEL_RUNNER__BATCH_SIZE", "3")
    monkeypatch.setattr(definitions, "suite_specs_from", lambda _dir: tiny_specs(arc=2, gsm8k=0))
    loaded = definitions.defs()  # what dagster dev and the daemon load
    args = build_parser().parse_args(["evaluate", "x"])
    args.specs = tiny_specs(arc=2, gsm8k=0)
    cli = _definitions(args)

    def dumped(defs: dg.Definitions) -> dict[str, Any]:
        return {key: repr(value) for key, value in (defs.resources or {}).items()}

    assert dumped(cli) == dumped(loaded)
    assert (
        isinstance(cli.resources["code_sandbox"], CodeSandbox)
        and cli.resources["code_sandbox"].backend == "modal"
    )
    assert cli.resources["model_runner"].batch_size == 3  # type: ignore[union-attr]
    assert isinstance(cli.resources["evalgate"], EvalgateHome) and cli.resources["evalgate"].home == str(
        home.resolve()
    )
    flagged = build_parser().parse_args(["evaluate", "x", "--batch-size", "6", "--profile", "full"])
    flagged.specs = tiny_specs(arc=2, gsm8k=0)
    assert _definitions(flagged).resources["model_runner"].batch_size == 6  # type: ignore[union-attr]


def test_no_secret_in_the_definitions_or_their_metadata(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster._serdes import serialize_value

    effective = _effective(
        home, "version: 1\nmodel_runner: {openai_api_key: {env: EVALGATE_TEST_OPENAI_KEY}}\n"
    )
    monkeypatch.setenv("EVALGATE_TEST_OPENAI_KEY", CANARY)
    monkeypatch.setenv("SLACK_BOT_TOKEN", CANARY)
    defs = definitions_from_config(effective, specs=tiny_specs(arc=2, gsm8k=0))
    snapshot = serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
    assert "EVALGATE_TEST_OPENAI_KEY" in snapshot, "the snapshot names the variable"
    assert CANARY not in snapshot


# -- sections passed through to resources in their own modules --------------------------------------------


class _Classifier(dg.ConfigurableResource):
    backend: str = "local"
    threshold: float = 0.5


@pytest.fixture
def classifier_module(monkeypatch: pytest.MonkeyPatch) -> str:
    module = types.ModuleType("evalgate_test_classifier")
    _Classifier.__module__ = module.__name__
    module._Classifier = _Classifier  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(PASSTHROUGH, "refusal_classifier", (module.__name__, None))
    return module.__name__


def test_a_resource_section_is_passed_through_as_that_resources_fields(
    home: Path, classifier_module: str
) -> None:
    effective = _effective(home, "version: 1\nrefusal_classifier: {backend: remote, threshold: 0.8}\n")
    built = resources_from_config(effective)["refusal_classifier"]
    assert isinstance(built, _Classifier) and (built.backend, built.threshold) == ("remote", 0.8)
    assert "refusal_classifier" not in resources_from_config(_effective(home, "version: 1\n"))


def test_an_unknown_field_of_a_passed_through_section_names_the_file_and_field(
    home: Path, classifier_module: str
) -> None:
    effective = _effective(home, "version: 1\nrefusal_classifier: {treshold: 0.8}\n")
    with pytest.raises(
        ValueError, match=r"evalgate\.yaml: field `refusal_classifier.treshold`: not a setting"
    ):
        resources_from_config(effective)


def test_a_section_for_a_resource_this_evalgate_lacks_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PASSTHROUGH, "judge", ("evalgate_no_such_module", None))
    with pytest.raises(ValueError, match=r"field `judge`: this evalgate has no judge resource"):
        resources_from_config(_effective(home, "version: 1\njudge: {backend: anthropic}\n"))


def test_the_judge_section_builds_the_judge_resource_with_its_key_as_an_env_var(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from resources.judge import JudgeResource

    text = (
        "version: 1\njudge: {backend: anthropic, model: claude-x, api_key: {env: EVALGATE_TEST_ANTHROPIC}}\n"
    )
    effective = _effective(home, text)
    judge = resources_from_config(effective)["judge"]
    assert isinstance(judge, JudgeResource) and (judge.backend, judge.model) == ("anthropic", "claude-x")
    assert isinstance(judge.api_key, dg.EnvVar) and judge.api_key.env_var_name == "EVALGATE_TEST_ANTHROPIC"
    defs = definitions_from_config(effective, specs=tiny_specs(arc=2, gsm8k=0))
    assert defs.resources["judge"] == judge, "the configured judge replaces the embedded default"
    monkeypatch.setenv("EVALGATE_TEST_ANTHROPIC", CANARY)
    assert main(["--home", str(home), "config", "show"]) == 0
    shown = capsys.readouterr().out
    assert "$EVALGATE_TEST_ANTHROPIC" in shown and CANARY not in shown
    (home / "evalgate.yaml").write_text(f"version: 1\njudge: {{backend: anthropic, api_key: {CANARY}}}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(environ=_env(home))
    assert "field `judge`: api_key: a secret is named by its environment variable" in str(raised.value)
    assert CANARY not in str(raised.value)


def test_the_results_section_sets_the_homes_object_storage(home: Path) -> None:
    text = (
        "version: 1\nresults:\n  uri: s3://evals/tables\n  storage_options: {endpoint_url: 'http://127.0.0.1:9000'}\n"
        "  storage_secrets: {aws_secret_access_key: EVALGATE_TEST_S3_SECRET}\n"
    )
    built = resources_from_config(_effective(home, text))["evalgate"]
    assert isinstance(built, EvalgateHome)
    assert built.results_uri == "s3://evals/tables"
    assert built.results_storage_options == {"endpoint_url": "http://127.0.0.1:9000"}
    assert built.results_storage_secrets == {"aws_secret_access_key": "EVALGATE_TEST_S3_SECRET"}
    with pytest.raises(
        ConfigError, match=r"field `results.storage_secrets`: .*must name an environment variable"
    ):
        _effective(home, f"version: 1\nresults: {{storage_secrets: {{aws_secret_access_key: {CANARY}}}}}\n")


def test_the_cli_refuses_a_malformed_config_in_one_line_naming_file_and_field(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(home / "evalgate.yaml", "version: 1\nsandbox: {backend: docker}\n")
    assert main(["--home", str(home), "config", "show"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"evalgate: error: evalgate config: {path}: field `sandbox.backend`:"), err
    assert len(err.splitlines()) == 1
