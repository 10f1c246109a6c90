"""A run the daemon launches uses exactly the configuration ``evalgate`` sees: a config file (named by
``$EVALGATE_CONFIG``) plus an environment override select the ``full`` profile, a batch size and the Modal
sandbox backend; the run's own metadata and tags say so; and a secret given to the run never lands in the
instance's storage, its logs, the run's metadata or ``config show``.

The Modal backend is not run for real: without credentials it refuses with its own "no Modal credentials"
error, which the run records.
"""

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from e2e.e2e_support import REPO, Service, make_dagster_home, wait_until

from eval_assets.config import load_config
from eval_assets.config_resources import CONFIG_DIGEST_TAG, config_digest
from eval_assets.datapkgs import data_dir

pytestmark = pytest.mark.slow

CANARY = "sk-evalgate-DAEMON-CANARY-4e1d0b"
KEY_ENV = "EVALGATE_E2E_OPENAI_KEY"
PROBE = dg.AssetKey("config_probe")
DEFINITIONS = Path(__file__).resolve().parent / "config_definitions.py"
DAGSTER_DAEMON = Path(sys.executable).parent / "dagster-daemon"
EVALGATE = Path(sys.executable).parent / "evalgate"
PROBE_RUN_S = 240  # the daemon's start on 2 shared cores, its first automation tick, one tiny run

CONFIG = f"""\
version: 1
suites: {{profile: full}}
model_runner: {{batch_size: 2, device: cpu, openai_api_key: {{env: {KEY_ENV}}}}}
sandbox: {{backend: modal, modal_app_name: evalgate-e2e}}
"""


@dataclass
class Deployment:
    root: Path
    home: Path
    dagster_home: Path
    env: dict[str, str]
    daemon: Service
    instance: dg.DagsterInstance


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("config_daemon")
    home = root / "home"
    home.mkdir()
    config = root / "team" / "evalgate.yaml"
    config.parent.mkdir()
    config.write_text(CONFIG, encoding="utf-8")
    dagster_home = make_dagster_home(root / "dagster")
    workspace = root / "workspace.yaml"
    location = {"python_file": {"relative_path": str(DEFINITIONS), "working_directory": str(REPO),
                                "location_name": "evalgate_config_e2e"}}  # fmt: skip
    workspace.write_text(json.dumps({"load_from": [location]}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALGATE_", "DAGSTER_", "MODAL_"))}
    env.update(
        DAGSTER_HOME=str(dagster_home),
        EVALGATE_HOME=str(home),
        EVALGATE_CONFIG=str(config),
        EVALGATE_DATA_DIR=str(data_dir()),  # the suites' specs are hashed with their data; nothing is run
        EVALGATE_MODEL_RUNNER__BATCH_SIZE="3",  # the environment over the file's 2
        MODAL_CONFIG_PATH=str(root / "no-modal.toml"),  # no Modal credentials anywhere
        PYTHONUNBUFFERED="1",
        **{KEY_ENV: CANARY},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(dagster_home))
        # the storage is created before the daemon starts (two processes stamping one schema collide)
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        daemon = Service(
            [str(DAGSTER_DAEMON), "run", "-w", str(workspace)], env=env, cwd=root, log=root / "daemon.log"
        )
        try:
            yield Deployment(root, home, dagster_home, env, daemon, instance)
        finally:
            daemon.stop()
            instance.dispose()


def _probe_run(d: Deployment) -> dg.DagsterRun | None:
    if not d.daemon.alive():
        raise AssertionError(f"dagster-daemon exited\n{d.daemon.log_tail()}")
    if "Error while importing code" in d.daemon.log_tail(200_000):  # fail fast: the location cannot load
        raise AssertionError(f"the code location failed to load\n{d.daemon.log_tail()}")
    runs = [r for r in d.instance.get_runs() if PROBE in (r.asset_selection or set())]
    failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
    if failed:
        events = d.instance.all_logs(failed[0].run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        raise AssertionError(f"the probe run failed: {[e.message for e in events]}")
    done = [r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS]
    return done[0] if done else None


def _metadata(instance: dg.DagsterInstance) -> dict[str, Any]:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=PROBE), limit=1).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {key: value.value for key, value in materialization.metadata.items()}


def test_a_daemon_launched_run_uses_the_file_and_the_environment(deployment: Deployment) -> None:
    d = deployment
    run = wait_until("automation to run config_probe", lambda: _probe_run(d), deadline_s=PROBE_RUN_S,
                     interval_s=1.0, diagnostics=d.daemon.log_tail)  # fmt: skip
    metadata = _metadata(d.instance)
    assert metadata["profile/arc_easy"] == metadata["profile/gsm8k"] == "full"
    assert metadata["batch_size"] == 3, "the environment's override, not the file's 2 or the default 8"
    assert metadata["device"] == "cpu"
    assert (metadata["sandbox_backend"], metadata["modal_app_name"]) == ("modal", "evalgate-e2e")
    assert "no Modal credentials" in metadata["sandbox_error"] or "modal client" in metadata["sandbox_error"]
    assert metadata["openai_api_key_sha256"] == hashlib.sha256(CANARY.encode()).hexdigest()

    # launched by automation, tagged with the digest of the very configuration `evalgate` computes here
    assert run.tags.get("dagster/sensor_name") == "evaluate_checkpoints" or any(
        "automation" in key for key in run.tags
    ), run.tags
    expected = config_digest(load_config(environ=d.env))
    assert run.tags[CONFIG_DIGEST_TAG] == expected

    shown = subprocess.run([str(EVALGATE), "config", "show"], env=d.env, capture_output=True, text=True,
                           timeout=120, check=True).stdout  # fmt: skip
    assert f"digest: {expected}" in shown
    rows = {
        line.split()[0]: line.split()[1:]
        for line in shown.splitlines()
        if line.startswith(("suites.", "model_runner.", "sandbox."))
    }
    assert rows["suites.profile"][0] == "full" and rows["suites.profile"][1] == "file"
    assert rows["model_runner.batch_size"] == ["3", "env", "EVALGATE_MODEL_RUNNER__BATCH_SIZE"]
    assert rows["sandbox.backend"][0] == "modal"
    assert rows["model_runner.openai_api_key"][:2] == [f"${KEY_ENV}", "(set)"]
    assert CANARY not in shown


def test_the_secret_is_nowhere_in_storage_logs_or_metadata(deployment: Deployment) -> None:
    d = deployment
    run = wait_until(
        "the probe run", lambda: _probe_run(d), deadline_s=PROBE_RUN_S, diagnostics=d.daemon.log_tail
    )
    logged = [e.message for e in d.instance.all_logs(run.run_id)]
    assert any("model runner:" in m and "<secret>" in m for m in logged), "the probe logged the resource"
    assert not any(CANARY in m for m in logged)
    assert CANARY not in json.dumps(_metadata(d.instance), default=str)
    needle = CANARY.encode()
    leaked = [p for top in (d.dagster_home, d.home, d.root) for p in top.rglob("*")
              if p.is_file() and needle in p.read_bytes()]  # fmt: skip
    assert not leaked, f"the secret was written to {leaked}"
