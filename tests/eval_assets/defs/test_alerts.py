"""The Slack alerts sensor against a local server speaking Slack's Web API (``chat.postMessage``), on real
gate check evaluations in a SQLite Dagster instance (the embedded default), plus the pure message formatting.
Only the last test talks to real Slack, and only with credentials."""

import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from slack_testing import BROKEN, COMPARISONS, SECRET_ENV, SUITE, materialize_scenarios, slack_wire_server

from eval_assets.checkpoints import CheckpointManifest
from eval_assets.defs.alerts import (
    CheckAlert,
    OverrideMoveAlert,
    RunFailureAlert,
    build_alerts_sensor,
    format_check_alert,
    format_override_move,
    format_run_failure,
)
from eval_assets.instance import DAGSTER_YAML
from resources.evalgate import EvalgateHome
from resources.slack import SlackAlerts

UI = "http://dagster.example:3000"
SCENARIOS = ("regressed", "unsure", "fine", BROKEN)


# -- formatting (pure) ------------------------------------------------------------------------------------

ALERT = CheckAlert(
    run_id="0123456789abcdef", checkpoint="step-12000", asset="comparison/arc_easy",
    check="no_regression_vs_production", rule="no_regression_vs_production", outcome="fail", passed=False,
    blocking_check=True, observed=-0.185, ci_low=-0.263, ci_high=-0.108, threshold=-0.01, n=200,
    reason="regression beyond the 1.0% margin: difference -0.185 (95% newcombe CI [-0.263, -0.108], n=200)",
    production="base", policy_hash="sha256:0123456789abcdef0123",
)  # fmt: skip


def test_check_alert_states_checkpoint_rule_numbers_reason_and_links() -> None:
    text = format_check_alert(ALERT, UI + "/")
    lines = text.splitlines()
    assert lines[0] == (
        ":red_circle: *Gate check FAIL* · checkpoint `step-12000` · rule `no_regression_vs_production` "
        "(blocking check; blocks promotion)"
    )
    assert lines[1] == "observed -0.185, CI [-0.263, -0.108] · threshold -0.010 · n 200"
    assert lines[2] == f"reason: {ALERT.reason}"
    assert lines[3] == (
        "vs production `base` · policy `sha256:0123456789ab` · check `no_regression_vs_production` on "
        "`comparison/arc_easy`"
    )
    assert lines[4] == (
        f"<{UI}/runs/0123456789abcdef|run 01234567> · <{UI}/assets/comparison/arc_easy?view=checks|"
        "comparison/arc_easy checks>"
    )


def test_inconclusive_warning_says_it_does_not_block_and_missing_numbers_read_na() -> None:
    alert = CheckAlert(**{**ALERT.__dict__, "outcome": "inconclusive", "passed": True, "observed": float("nan"),
                          "ci_low": None, "n": None})  # fmt: skip
    text = format_check_alert(alert, UI)
    assert text.startswith(":large_yellow_circle: *Gate check INCONCLUSIVE*")
    assert "warning only, promotion not blocked" in text
    assert "observed n/a, CI [n/a, -0.108] · threshold -0.010 · n n/a" in text


def test_markup_in_reasons_is_escaped() -> None:
    alert = CheckAlert(
        **{**ALERT.__dict__, "reason": "a <!channel> & <http://evil|click>", "checkpoint": "x`y"}
    )
    text = format_check_alert(alert, UI)
    assert "a &lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in text
    assert "<!channel>" not in text and "`x'y`" in text


def test_run_failure_and_override_messages() -> None:
    failure = RunFailureAlert(
        run_id="r-1", job="__ASSET_JOB", checkpoint="step-12000", message='Execution of run failed.',
        failed_steps=tuple(f"step_{i}: RuntimeError: boom" for i in range(7)),
    )  # fmt: skip
    text = format_run_failure(failure, UI)
    assert text.splitlines()[0] == ":x: *Run failed* · checkpoint `step-12000` · job `__ASSET_JOB`"
    assert "• step_0: RuntimeError: boom" in text and "• … and 2 more failed steps" in text
    assert text.endswith(f"<{UI}/runs/r-1|run r-1>")
    move = OverrideMoveAlert(
        checkpoint="step-12000", model_hash="sha256:" + "c" * 64, predecessor="base",
        authority="/repo/overrides/step-12000.yaml sha256:ab12 commit 9f3e", actor="evalgate gate",
        reason="promoted by override", sequence=3, run_id="r-2",
    )  # fmt: skip
    text = format_override_move(move, UI)
    assert text.splitlines()[0] == (
        ":warning: *Production moved by override* · `step-12000` is production (was `base`), move #3"
    )
    assert "override: /repo/overrides/step-12000.yaml sha256:ab12 commit 9f3e" in text
    assert f"<{UI}/runs/r-2|run r-2>" in text


# -- the sensor on real check evaluations -----------------------------------------------------------------


@dataclass
class World:
    instance: dg.DagsterInstance
    evalgate: EvalgateHome
    run_ids: dict[str, str]
    token: str
    root: Path


def _sqlite_instance(root: Path, env: pytest.MonkeyPatch) -> dg.DagsterInstance:
    home = root / "dagster"
    home.mkdir(parents=True)
    shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")
    env.setenv("DAGSTER_HOME", str(home))  # the copied dagster.yaml reads its storage dir from it
    return dg.DagsterInstance.from_config(str(home))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("alerts")
    token = "xoxb-test-" + secrets.token_hex(12)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(SECRET_ENV, token)
        instance = _sqlite_instance(root, env)
        evalgate = EvalgateHome(home=str(root / "home"))
        run_ids = materialize_scenarios(instance, evalgate, SCENARIOS)
        yield World(instance, evalgate, dict(zip(SCENARIOS, run_ids, strict=True)), token, root)
        instance.dispose()


def _tick(
    sensor: dg.SensorDefinition, world: World, slack: SlackAlerts, cursor: str | None
) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=world.instance, cursor=cursor, resources={"slack": slack, "evalgate": world.evalgate}
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def _slack(world: World, base_url: str, token: str | None = None) -> SlackAlerts:
    return SlackAlerts(token=token or world.token, channel="#gate", base_url=base_url, dagster_ui_url=UI)


def test_scenarios_ran_as_designed(world: World) -> None:
    runs = {name: world.instance.get_run_by_id(run_id) for name, run_id in world.run_ids.items()}
    statuses = {name: run.status if run else None for name, run in runs.items()}
    assert statuses == {
        "regressed": dg.DagsterRunStatus.FAILURE,  # a failed blocking check fails its run
        "unsure": dg.DagsterRunStatus.SUCCESS,  # inconclusive under `warn` passes
        "fine": dg.DagsterRunStatus.SUCCESS,
        BROKEN: dg.DagsterRunStatus.FAILURE,
    }


def test_one_message_per_failure_across_many_ticks(world: World, caplog: pytest.LogCaptureFixture) -> None:
    sensor = build_alerts_sensor(lookback_minutes=60)
    caplog.set_level(logging.DEBUG)
    with slack_wire_server(world.token) as slack_server:
        slack = _slack(world, slack_server.base_url)
        cursor = None
        for _ in range(5):
            result = _tick(sensor, world, slack, cursor)
            cursor = result.cursor
        texts = slack_server.texts()
    assert len(texts) == 4, texts
    regressed, regressed_run, unsure, broken = texts
    ids = world.run_ids
    # the failed check: checkpoint, rule, observed with its CI, threshold, n, reason, run link
    fail = COMPARISONS["regressed"]
    assert regressed.startswith(":red_circle: *Gate check FAIL* · checkpoint `regressed` · rule "
                                "`no_regression_vs_production` (blocking check; blocks promotion)")  # fmt: skip
    assert (
        f"observed {fail['difference']:.3f}, CI [{fail['low']:.3f}, {fail['high']:.3f}] · threshold -0.010 · n 200"
        in regressed
    )
    assert (
        "reason: regression beyond the 1.0% margin: difference -0.185 (95% newcombe CI [-0.263, -0.108]"
        in regressed
    )
    assert f"<{UI}/runs/{ids['regressed']}|" in regressed and "vs production `base`" in regressed
    # the run it failed
    assert regressed_run.startswith(":x: *Run failed* · checkpoint `regressed`")
    assert (
        "DagsterAssetCheckFailedError" in regressed_run and f"<{UI}/runs/{ids['regressed']}|" in regressed_run
    )
    # the inconclusive check
    unsure_row = COMPARISONS["unsure"]
    assert unsure.startswith(":large_yellow_circle: *Gate check INCONCLUSIVE* · checkpoint `unsure`")
    assert (
        f"observed {unsure_row['difference']:.3f}, CI [{unsure_row['low']:.3f}, {unsure_row['high']:.3f}]"
        in unsure
    )
    assert (
        "n 40" in unsure and "too few items to decide" in unsure and f"<{UI}/runs/{ids['unsure']}|" in unsure
    )
    # a run that failed outside the gate
    assert broken.startswith(":x: *Run failed* · checkpoint `broken`")
    assert f"predictions__{SUITE}: ConnectionError: model server refused the request" in broken
    assert f"<{UI}/runs/{ids[BROKEN]}|run {ids[BROKEN]}>" in broken
    assert not any("`fine`" in text for text in texts), "a passing check is not an alert"
    # the token: only ever in the Authorization header
    assert "[redacted]" in broken, "the leaked credential in the error message is redacted"
    for path, headers, raw in slack_server.requests:
        assert path == "/api/chat.postMessage" and headers["authorization"] == f"Bearer {world.token}"
        assert world.token not in raw
    assert world.token not in caplog.text and world.token not in str(cursor)
    assert "(redacted)" in caplog.text, "the Slack SDK's debug log ran, with the header redacted"


def test_a_refused_message_is_retried_next_tick_and_nothing_is_sent_twice(world: World) -> None:
    sensor = build_alerts_sensor(lookback_minutes=60)
    with slack_wire_server(world.token) as slack_server:
        slack = _slack(world, slack_server.base_url)
        slack_server.refuse_next("internal_error")
        first = _tick(sensor, world, slack, None)
        assert slack_server.texts() == [] and "internal_error" in str(first.skip_reason)
        # the 1st message is taken, the 2nd (the same run's failure) refused: the tick stops between them
        slack_server.refuse_next(None, "fatal_error")
        second = _tick(sensor, world, slack, first.cursor)
        assert len(slack_server.texts()) == 1 and "fatal_error" in str(second.skip_reason)
        third = _tick(sensor, world, slack, second.cursor)
        assert len(slack_server.texts()) == 4
        _tick(sensor, world, slack, third.cursor)
        texts = slack_server.texts()
    assert len(texts) == 4 and len(set(texts)) == 4, texts
    assert texts[1].startswith(":x: *Run failed* · checkpoint `regressed`")


def test_budget_spreads_messages_over_ticks(world: World) -> None:
    sensor = build_alerts_sensor(lookback_minutes=60, max_messages_per_tick=1)
    with slack_wire_server(world.token) as slack_server:
        slack = _slack(world, slack_server.base_url)
        cursor = None
        counts = []
        for _ in range(6):
            cursor = _tick(sensor, world, slack, cursor).cursor
            counts.append(len(slack_server.messages))
    assert counts == [1, 2, 3, 4, 4, 4]


def test_a_wrong_token_posts_nothing_and_loses_nothing(world: World) -> None:
    sensor = build_alerts_sensor(lookback_minutes=60)
    with slack_wire_server(world.token) as slack_server:
        wrong = "xoxb-wrong-" + secrets.token_hex(6)
        refused = _tick(sensor, world, _slack(world, slack_server.base_url, token=wrong), None)
        assert "invalid_auth" in str(refused.skip_reason) and wrong not in str(refused.skip_reason)
        _tick(sensor, world, _slack(world, slack_server.base_url), refused.cursor)
        assert len(slack_server.texts()) == 4


def test_first_tick_does_not_replay_history_older_than_the_lookback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "xoxb-test-" + secrets.token_hex(6)
    instance = _sqlite_instance(tmp_path, monkeypatch)
    evalgate = EvalgateHome(home=str(tmp_path / "home"))
    try:
        materialize_scenarios(instance, evalgate, ("regressed",))
        sensor = build_alerts_sensor(lookback_minutes=0)
        world = World(instance, evalgate, {}, token, tmp_path)
        with slack_wire_server(token) as slack_server:
            slack = _slack(world, slack_server.base_url)
            cursor = _tick(sensor, world, slack, None).cursor
            assert slack_server.texts() == []
            (run_id,) = materialize_scenarios(instance, evalgate, ("unsure",))
            for _ in range(3):
                cursor = _tick(sensor, world, slack, cursor).cursor
            texts = slack_server.texts()
        assert len(texts) == 1 and "checkpoint `unsure`" in texts[0] and run_id in texts[0]
    finally:
        instance.dispose()


def test_override_moves_are_announced_once_and_gate_moves_are_not(tmp_path: Path) -> None:
    token = "xoxb-test-" + secrets.token_hex(6)
    instance = dg.DagsterInstance.ephemeral()
    evalgate = EvalgateHome(home=str(tmp_path / "home"))
    registry = evalgate.registry()
    for name, ch in (("base", "a"), ("step-2", "b"), ("step-3", "c")):
        registry.add(
            CheckpointManifest(
                name=name, path=f"/w/{name}", format="hf", backend="transformers", model_hash="sha256:" + ch * 64,
                tokenizer_hash="sha256:" + "f" * 64, source="test", registered_at=datetime.now(UTC).isoformat(),
            )
        )  # fmt: skip
    ledger = evalgate.ledger()

    def move(checkpoint: str, predecessor: str | None, kind: Any, authority: str) -> None:
        ledger.move(
            checkpoint=checkpoint, model_hash=registry.get(checkpoint).model_hash, expected_predecessor=predecessor,
            authority_kind=kind, authority=authority, actor="evalgate gate", reason=f"moved to {checkpoint}",
            policy_version=2, policy_hash="sha256:p", run_id=f"run-{checkpoint}",
        )  # fmt: skip

    move("base", None, "baseline", "evalgate promote --baseline")
    move("step-2", "base", "gate", "gate run run-step-2")
    sensor = build_alerts_sensor(lookback_minutes=60)
    world = World(instance, evalgate, {}, token, tmp_path)
    with slack_wire_server(token) as slack_server:
        slack = _slack(world, slack_server.base_url)
        cursor = _tick(sensor, world, slack, None).cursor
        assert slack_server.texts() == [], "the baseline and a gate promotion are not alerts"
        override = "/repo/overrides/step-3.yaml sha256:" + "d" * 64 + " commit 1234abcd"
        move("step-3", "step-2", "override", override)
        for _ in range(3):
            cursor = _tick(sensor, world, slack, cursor).cursor
        texts = slack_server.texts()
    assert len(texts) == 1
    assert texts[0].startswith(
        ":warning: *Production moved by override* · `step-3` is production (was `step-2`)"
    )
    assert f"override: {override}" in texts[0] and f"<{UI}/runs/run-step-3|run run-step-3>" in texts[0]
    assert json.loads(str(cursor))["after_sequence"] == 3


def test_a_broken_production_history_is_announced_once(tmp_path: Path) -> None:
    token = "xoxb-test-" + secrets.token_hex(6)
    evalgate = EvalgateHome(home=str(tmp_path / "home"))
    pointer = evalgate.layout.production_pointer
    pointer.parent.mkdir(parents=True)
    pointer.write_text(json.dumps({"checkpoint": "hand-edited"}))  # a pointer with no recorded move
    world = World(dg.DagsterInstance.ephemeral(), evalgate, {}, token, tmp_path)
    sensor = build_alerts_sensor()
    with slack_wire_server(token) as slack_server:
        slack = _slack(world, slack_server.base_url)
        cursor = None
        for _ in range(3):
            cursor = _tick(sensor, world, slack, cursor).cursor
        texts = slack_server.texts()
    if not texts:
        pytest.fail("the ledger did not refuse a pointer file without history; this test's premise changed")
    assert len(texts) == 1 and texts[0].startswith(":rotating_light: *Production history does not verify*")


def test_sensor_is_stopped_by_default_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    assert build_alerts_sensor().default_status == dg.DefaultSensorStatus.STOPPED
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-set")
    assert build_alerts_sensor().default_status == dg.DefaultSensorStatus.RUNNING


def test_real_slack_accepts_the_message() -> None:
    """Posts one formatted alert to a real Slack channel; needs a real token and a test channel."""
    token, channel = os.environ.get("SLACK_BOT_TOKEN"), os.environ.get("EVALGATE_SLACK_TEST_CHANNEL")
    if not token or not channel:
        pytest.skip(
            "no Slack credentials: set SLACK_BOT_TOKEN and EVALGATE_SLACK_TEST_CHANNEL to post one test alert to "
            "real Slack (every other alert test uses the local Web API server)"
        )
    slack = SlackAlerts(token=token, channel=channel, dagster_ui_url=UI)
    slack.post(format_check_alert(ALERT, UI) + "\n_(evalgate test message)_")
