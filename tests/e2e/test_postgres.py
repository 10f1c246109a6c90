"""The shipped PostgreSQL instance (``deploy/dagster.postgres.yaml``, selected by ``EVALGATE_INSTANCE=postgres``)
on the real PostgreSQL at 127.0.0.1:5432: a fresh database per test, dropped after.

* the CLI's instance is Postgres for runs, events and schedules; a checkpoint partition, a real gate check
  and the Slack alerts sensor run on it, and everything is read back from Postgres itself;
* ``evalgate register`` (the console script) registers a checkpoint into Postgres, unchanged;
* ``dagster-daemon`` on it: a new partition is materialized by automation with no manual launch, its check
  evaluated, and the alerts sensor, ticking in the daemon with its cursor in Postgres, posts once per failure.

PostgreSQL unreachable: skipped on a developer machine, a failure under ``CI=true``. The server is
``$EVALGATE_TEST_PG_HOST``:``$EVALGATE_TEST_PG_PORT`` as ``$EVALGATE_TEST_PG_USER`` (default 127.0.0.1:5432,
postgres), database ``$EVALGATE_TEST_PG_DB`` (default ``test``) for the administrative connection.
"""

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from e2e.e2e_support import REPO, Service, wait_until
from slack_testing import COMPARISONS, materialize_scenarios, slack_wire_server

from eval_assets.defs.alerts import build_alerts_sensor
from eval_assets.event_log import latest_check_evaluation
from eval_assets.instance import POSTGRES_YAML, ensure_dagster_home, open_instance
from eval_assets.paths import HomeLayout
from resources.evalgate import EvalgateHome
from resources.slack import SlackAlerts

PG_HOST = os.environ.get("EVALGATE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("EVALGATE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("EVALGATE_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("EVALGATE_TEST_PG_DB", "test")
CHECK_KEY = dg.AssetCheckKey(dg.AssetKey(["comparison", "arc_easy"]), "no_regression_vs_production")
EVALGATE = Path(sys.executable).parent / "evalgate"
DAGSTER_DAEMON = Path(sys.executable).parent / "dagster-daemon"
UI = "http://dagster.example:3000"


def _admin():  # type: ignore[no-untyped-def]
    import psycopg2

    connection = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_ADMIN_DB, connect_timeout=5
    )
    connection.autocommit = True
    return connection


@pytest.fixture(scope="module")
def postgres_server() -> None:
    try:
        import psycopg2
    except ImportError as exc:  # a dependency of dagster-postgres, in the dev extra
        pytest.fail(f"psycopg2 is not installed ({exc}): pip install -e '.[dev]'")
    try:
        _admin().close()
    except psycopg2.OperationalError as exc:
        reason = (
            f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT} as {PG_USER}/{PG_ADMIN_DB}: {str(exc).strip()}"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)


@pytest.fixture
def database(postgres_server: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database, the environment that selects the Postgres instance on it, and the drop after."""
    name = f"evalgate_test_{secrets.token_hex(6)}"
    admin = _admin()
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    for key, value in {
        "EVALGATE_INSTANCE": "postgres", "EVALGATE_PG_HOST": PG_HOST, "EVALGATE_PG_PORT": str(PG_PORT),
        "EVALGATE_PG_USER": PG_USER, "EVALGATE_PG_DB": name,
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    try:
        yield name
    finally:
        admin = _admin()
        try:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.close()


def _query(database: str, sql: str) -> list[tuple[object, ...]]:
    import psycopg2

    connection = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database, connect_timeout=5
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


def _postgres_storage(instance: dg.DagsterInstance) -> dict[str, str]:
    return {
        "runs": type(instance.run_storage).__name__,
        "events": type(instance.event_log_storage).__name__,
        "schedules": type(instance.schedule_storage).__name__,
    }


def test_cli_instance_runs_gate_and_alerts_on_postgres(database: str, tmp_path: Path) -> None:
    layout = HomeLayout(tmp_path / "home")
    instance = open_instance(layout)  # what every evalgate command opens
    try:
        assert (layout.dagster_home / "dagster.yaml").read_text() == POSTGRES_YAML.read_text()
        assert _postgres_storage(instance) == {
            "runs": "PostgresRunStorage", "events": "PostgresEventLogStorage", "schedules": "PostgresScheduleStorage",
        }  # fmt: skip
        evalgate = EvalgateHome(home=str(layout.root))
        run_ids = materialize_scenarios(instance, evalgate, ("regressed", "unsure"))
        token = "xoxb-test-" + secrets.token_hex(8)
        sensor = build_alerts_sensor(lookback_minutes=60)
        with slack_wire_server(token) as slack_server:
            slack = SlackAlerts(
                token=token, channel="#gate", base_url=slack_server.base_url, dagster_ui_url=UI
            )
            cursor = None
            for _ in range(3):
                context = dg.build_sensor_context(
                    instance=instance, cursor=cursor, resources={"slack": slack, "evalgate": evalgate}
                )
                result = sensor(context)
                assert isinstance(result, dg.SensorResult)
                cursor = result.cursor
            texts = slack_server.texts()
    finally:
        instance.dispose()
    assert [t.splitlines()[0].split(" · ")[0] for t in texts] == [
        ":red_circle: *Gate check FAIL*", ":x: *Run failed*", ":large_yellow_circle: *Gate check INCONCLUSIVE*",
    ]  # fmt: skip
    assert f"/runs/{run_ids[0]}|" in texts[0] and f"/runs/{run_ids[1]}|" in texts[2]

    # read back through a new instance on the same database, as another process would
    with dg.DagsterInstance.from_config(str(layout.dagster_home)) as again:
        runs = {run.run_id: run for run in again.get_runs()}
        assert set(runs) == set(run_ids)
        assert runs[run_ids[0]].status == dg.DagsterRunStatus.FAILURE
        assert runs[run_ids[1]].status == dg.DagsterRunStatus.SUCCESS
        assert sorted(again.get_dynamic_partitions("checkpoints")) == ["regressed", "unsure"]
        for partition, outcome in (("regressed", "fail"), ("unsure", "inconclusive")):
            evaluation = latest_check_evaluation(again, CHECK_KEY, partition)  # what promotion reads
            assert evaluation is not None and evaluation.metadata["outcome"].value == outcome
            assert evaluation.metadata["observed"].value == pytest.approx(
                COMPARISONS[partition]["difference"]
            )
            materialized = again.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=CHECK_KEY.asset_key, asset_partitions=[partition]), limit=1
            ).records
            assert len(materialized) == 1
    # and the rows are in PostgreSQL itself
    assert _query(database, "SELECT count(*) FROM runs") == [(2,)]
    checks = _query(
        database,
        "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_CHECK_EVALUATION'",
    )
    assert checks == [(2,)]
    partitions = _query(database, "SELECT partition FROM dynamic_partitions ORDER BY partition")
    assert partitions == [("regressed",), ("unsure",)]


def test_a_home_keeps_its_instance_config_unless_told(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Switching EVALGATE_INSTANCE replaces evalgate's own copy; a hand-written config on other storage is
    refused, not silently used; missing connection settings are named."""
    from eval_assets.instance import DAGSTER_YAML, InstanceConfigError

    layout = HomeLayout(tmp_path / "home")
    monkeypatch.setenv("EVALGATE_INSTANCE", "sqlite")
    config = ensure_dagster_home(layout) / "dagster.yaml"
    assert config.read_text() == DAGSTER_YAML.read_text()
    monkeypatch.setenv("EVALGATE_INSTANCE", "postgres")
    ensure_dagster_home(layout)
    assert config.read_text() == POSTGRES_YAML.read_text()
    config.write_text("storage:\n  sqlite:\n    base_dir: /somewhere\n")
    with pytest.raises(InstanceConfigError, match="uses sqlite storage but EVALGATE_INSTANCE=postgres"):
        ensure_dagster_home(layout)
    monkeypatch.delenv("EVALGATE_PG_HOST")
    with pytest.raises(InstanceConfigError, match="needs EVALGATE_PG_HOST"):
        ensure_dagster_home(layout)
    monkeypatch.setenv("EVALGATE_INSTANCE", "mysql")
    with pytest.raises(InstanceConfigError, match="not one of"):
        ensure_dagster_home(layout)


def test_postgres_config_matches_the_default_except_storage() -> None:
    import yaml

    from eval_assets.instance import DAGSTER_YAML

    sqlite, postgres = (yaml.safe_load(path.read_text()) for path in (DAGSTER_YAML, POSTGRES_YAML))
    assert {k: v for k, v in sqlite.items() if k != "storage"} == {
        k: v for k, v in postgres.items() if k != "storage"
    }
    assert postgres["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"


@pytest.mark.slow
def test_evalgate_register_writes_the_partition_to_postgres(
    database: str, tmp_path: Path, data_root: Path
) -> None:
    from eval_assets.datapkgs import SMOLLM2_GGUF

    if not EVALGATE.is_file():
        pytest.fail(f"the evalgate console script is not installed at {EVALGATE} (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "EVALGATE_HOME")}
    done = subprocess.run(
        [str(EVALGATE), "--home", str(tmp_path / "home"), "register", str(data_root / SMOLLM2_GGUF), "--name", "base"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("registered: base sha256:")
    assert _query(database, "SELECT partition FROM dynamic_partitions") == [("base",)]


# -- the daemon on Postgres ---------------------------------------------------------------------------------

DAEMON_DEFINITIONS = '''
"""Test definitions for dagster-daemon on Postgres: one automated comparison asset, the real regression check,
and the Slack alerts sensor (evalgate home and Slack server from the environment)."""
import os

import dagster as dg

from eval_assets.defs.alerts import build_alerts_sensor
from resources.evalgate import EvalgateHome
from resources.slack import SlackAlerts
from tests.slack_testing import comparison, regression_check

defs = dg.Definitions(
    assets=[comparison.map_asset_specs(lambda spec: spec.replace_attributes(
        automation_condition=dg.AutomationCondition.eager()))],
    asset_checks=[regression_check()],
    sensors=[
        dg.AutomationConditionSensorDefinition(
            "automation", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=5,
        ),
        build_alerts_sensor(minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING),
    ],
    resources={
        "evalgate": EvalgateHome(home=os.environ["EVALGATE_E2E_HOME"]),
        "slack": SlackAlerts(token=dg.EnvVar("SLACK_BOT_TOKEN"), channel="#gate",
                             base_url=os.environ["EVALGATE_SLACK_BASE_URL"], dagster_ui_url="http://ui.test"),
    },
    executor=dg.in_process_executor,
)
'''

DAEMON_UP_S = 180
ALERTED_S = 300
EXTRA_TICKS = 3


@dataclass
class Daemon:
    service: Service
    instance: dg.DagsterInstance

    def alert_ticks(self) -> list[object]:
        states = [s for s in self.instance.all_instigator_state() if s.instigator_name == "gate_alerts"]
        if not states:
            return []
        (state,) = states
        return list(self.instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=100))


@pytest.mark.slow
def test_daemon_on_postgres_evaluates_new_partitions_and_alerts_once(database: str, tmp_path: Path) -> None:
    """No manual launch: partitions added, automation materializes them and runs the check, the alerts
    sensor posts each failure once across many daemon ticks; runs, ticks and cursors live in Postgres."""
    from dagster._core.scheduler.instigation import TickStatus

    layout = HomeLayout(tmp_path / "home")
    dagster_home = ensure_dagster_home(layout)
    (tmp_path / "definitions.py").write_text(DAEMON_DEFINITIONS, encoding="utf-8")
    location = {"python_file": {"relative_path": str(tmp_path / "definitions.py"), "working_directory": str(REPO),
                                "location_name": "evalgate_postgres_e2e"}}  # fmt: skip
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(json.dumps({"load_from": [location]}), encoding="utf-8")
    token = "xoxb-test-" + secrets.token_hex(8)
    with (
        slack_wire_server(token) as slack_server,
        dg.DagsterInstance.from_config(str(dagster_home)) as instance,
    ):
        env = {k: v for k, v in os.environ.items() if k != "EVALGATE_HOME"}
        env.update(
            DAGSTER_HOME=str(dagster_home), EVALGATE_E2E_HOME=str(layout.root), SLACK_BOT_TOKEN=token,
            EVALGATE_SLACK_BASE_URL=slack_server.base_url, PYTHONUNBUFFERED="1",
        )  # fmt: skip
        service = Service(
            [str(DAGSTER_DAEMON), "run", "-w", str(workspace)],
            env=env,
            cwd=tmp_path,
            log=tmp_path / "daemon.log",
        )
        daemon = Daemon(service, instance)

        def diagnostics() -> str:
            runs = [
                (r.run_id[:8], r.tags.get("dagster/partition"), r.status.value) for r in instance.get_runs()
            ]
            return f"runs {runs}\nmessages {slack_server.texts()}\n{service.log_tail()}"

        def alive() -> None:
            if not service.alive():
                raise AssertionError(f"dagster-daemon exited\n{diagnostics()}")

        try:
            wait_until(
                "the alerts sensor's first tick", lambda: (alive(), bool(daemon.alert_ticks()))[1],
                deadline_s=DAEMON_UP_S, diagnostics=diagnostics,
            )  # fmt: skip
            instance.add_dynamic_partitions("checkpoints", ["regressed", "unsure", "fine"])
            wait_until(
                "three alerts", lambda: (alive(), len(slack_server.texts()) >= 3)[1], deadline_s=ALERTED_S,
                diagnostics=diagnostics,
            )  # fmt: skip
            wait_until(
                "three runs, all finished",
                lambda: (alive(), len(runs := list(instance.get_runs())) >= 3 and all(r.is_finished for r in runs))[1],
                deadline_s=ALERTED_S, diagnostics=diagnostics,
            )  # fmt: skip
            settled = time.time()
            wait_until(
                f"{EXTRA_TICKS} more alert ticks after the last run",
                lambda: (alive(), len([t for t in daemon.alert_ticks() if t.timestamp > settled  # type: ignore[attr-defined]
                                       and t.status != TickStatus.STARTED]) >= EXTRA_TICKS)[1],
                deadline_s=120, diagnostics=diagnostics,
            )  # fmt: skip
            runs = list(instance.get_runs())
            texts = slack_server.texts()
            ticks = _query(database, "SELECT count(*) FROM job_ticks")[0][0]
            states = _query(database, "SELECT count(*) FROM instigators")[0][0]
        finally:
            service.stop()
    assert sorted(str(r.tags.get("dagster/partition")) for r in runs) == ["fine", "regressed", "unsure"]
    assert len(texts) == 3, texts
    heads = sorted(tuple(t.splitlines()[0].split(" · ")[:2]) for t in texts)
    assert heads == [
        (":large_yellow_circle: *Gate check INCONCLUSIVE*", "checkpoint `unsure`"),
        (":red_circle: *Gate check FAIL*", "checkpoint `regressed`"),
        (":x: *Run failed*", "checkpoint `regressed`"),
    ]
    assert all("http://ui.test/runs/" in t for t in texts)
    assert ticks >= EXTRA_TICKS, "sensor ticks are stored in Postgres"
    assert states >= 2, "sensor states (with their cursors) are stored in Postgres"
