"""``checkpoint_manifest`` re-verifies a partition's tokenizer and config as it does its weights, and refuses a
manifest registered before config hashing with what to run; suite assets' code versions are their profile's."""

import json
from pathlib import Path

import dagster as dg
import pytest
from weights_testing import tiny_hf_dir

from eval_assets.checkpoints import build_manifest
from eval_assets.defs.checkpoint_assets import checkpoint_manifest
from eval_assets.defs.partitions import checkpoints
from eval_assets.defs.suite_assets import check_profile
from resources.checkpoint_registry import CheckpointRegistry
from resources.evalgate import EvalgateHome, SuiteSettings


def _materialize(home: Path, name: str) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(checkpoints.name, [name])
        return dg.materialize(
            [checkpoint_manifest], partition_key=name, instance=instance,
            resources={"evalgate": EvalgateHome(home=str(home))}, raise_on_error=False,
        )  # fmt: skip


def _failure(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    return str(failure.step_failure_data.error)


@pytest.mark.parametrize("file", ["tokenizer_config.json", "generation_config.json"])
def test_a_changed_tokenizer_or_config_under_a_registered_name_is_refused(tmp_path: Path, file: str) -> None:
    home = tmp_path / "home"
    ckpt = tiny_hf_dir(tmp_path / "hf")
    CheckpointRegistry(home / "registry").add(build_manifest(ckpt, name="ckpt"))
    first = _materialize(home, "ckpt")
    assert first.success
    assert first.output_for_node("checkpoint_manifest")["config_hash"].startswith("sha256:")
    (ckpt / file).write_text(json.dumps({"edited": True}))
    again = _materialize(home, "ckpt")
    assert not again.success
    assert f"at {ckpt} now hash to" in _failure(
        again
    ) and "register the changed checkpoint under a new name" in _failure(again)


def test_a_legacy_manifest_is_refused_with_what_to_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    manifest = build_manifest(tiny_hf_dir(tmp_path / "hf"), name="old")
    (home / "registry").mkdir(parents=True)
    value = manifest.model_dump(mode="json")
    del value["config_hash"]
    (home / "registry" / "old.json").write_text(json.dumps(value))
    result = _materialize(home, "old")
    assert not result.success
    assert f"`evalgate register {manifest.path} --name old`" in _failure(result)


def test_a_run_of_another_profile_than_the_definitions_is_refused() -> None:
    check_profile(SuiteSettings(profile="smoke"), "smoke", "arc_easy")
    with pytest.raises(ValueError, match=r"built for profile 'smoke'.*name profile 'full'"):
        check_profile(SuiteSettings(profile="full"), "smoke", "arc_easy")


def test_code_versions_are_the_profiles_and_editing_full_leaves_smoke(tmp_path: Path) -> None:
    from eval_assets.definitions import build_definitions
    from eval_assets.suites import load_suite_specs
    from eval_assets.suites.spec import Profile

    specs = {"arc_easy": load_suite_specs()["arc_easy"]}

    def versions(profile: str, specs: dict[str, object]) -> dict[str, str]:
        defs = build_definitions(specs=specs, suite_settings=SuiteSettings(profile=profile),  # type: ignore[arg-type]
                                 evalgate=EvalgateHome(home=str(tmp_path)))  # fmt: skip
        graph = defs.resolve_asset_graph()
        return {key.to_user_string(): graph.get(key).code_version or "" for key in graph.get_all_asset_keys()
                if "arc_easy" in key.to_user_string()}  # fmt: skip

    smoke, full = versions("smoke", specs), versions("full", specs)
    assert set(smoke) == {"predictions/arc_easy", "scores/arc_easy", "comparison/arc_easy"}
    assert all(smoke[key] != full[key] for key in smoke)
    spec = specs["arc_easy"]
    edited = {"arc_easy": spec.model_copy(update={"profiles": spec.profiles | {"full": Profile(limit=100)}})}
    assert versions("smoke", edited) == smoke, "editing only the full profile leaves smoke assets current"
    assert versions("full", edited) != full
