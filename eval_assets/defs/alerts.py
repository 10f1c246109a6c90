"""``gate_alerts``: the gate's failures in Slack, each exactly once.

One message per gate check that failed or was inconclusive (blocking or warning), one per failed run, and
one per production move made by an override record (and one when the production history no longer
verifies). Each message carries the checkpoint, the rule, the observed value with its CI, the threshold, n,
the reason and a link to the run in the Dagster UI.

How the sensor reads: a check's evaluation is read when its run has ended. Run-end events (success, failure,
cancellation) come from the public ``instance.fetch_run_status_changes`` after a storage-id cursor, and each
run's ``ASSET_CHECK_EVALUATION`` and ``STEP_FAILURE`` events from ``instance.all_logs`` (how Dagster's own
run-status sensors read a run's events). Why not ``get_event_records`` over check evaluations after a storage
id: on the SQLite instance (the embedded default) the event log is sharded per run, and that call refuses a
plain storage-id cursor for any event type but asset events ("Called `get_event_records` on a run-sharded
event log storage with a cursor that is not run-aware"); run-status events are mirrored into the index shard,
so their storage ids are one global order on SQLite and PostgreSQL alike. Production moves come from the
verified history in ``gate_decisions`` (:meth:`ProductionLedger.moves`), after a sequence cursor.

Exactly once: the cursor says which run-end event and which production move were last handled, and how many
messages of the next run were already posted when a tick stopped midway (Slack refused one, or the per-tick
budget ran out); the next tick resumes there. A tick that cannot post returns its cursor and says why in its
skip reason, so nothing already posted is posted again and nothing unposted is dropped. A sensor that never
ran starts ``lookback_minutes`` back, so turning alerts on for an old instance does not replay its history.
"""

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import dagster as dg
from slack_sdk.errors import SlackApiError, SlackClientError

from resources.evalgate import EvalgateHome
from resources.production_ledger import ProductionIntegrityError
from resources.slack import SlackAlerts, slack_token_configured

SENSOR_NAME = "gate_alerts"
PARTITION_TAG = "dagster/partition"
RunEnd = Literal[
    dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED
]
RUN_END_EVENTS: tuple[RunEnd, ...] = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)
#: Outcomes worth a message even when the check passed (``inconclusive`` under ``warn`` passes).
ALERT_OUTCOMES = frozenset({"fail", "inconclusive"})
REDACTED = "[redacted]"
MAX_REASON_CHARS = 1500
MAX_ERROR_CHARS = 300


# -- what a message says (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckAlert:
    """A gate check evaluation worth a message."""

    run_id: str
    checkpoint: str | None
    asset: str  # the checked asset's key, e.g. "comparison/arc_easy"
    check: str
    rule: str
    outcome: str
    passed: bool
    blocking_check: bool
    observed: float | None
    ci_low: float | None
    ci_high: float | None
    threshold: float | None
    n: int | None
    reason: str
    production: str | None = None
    policy_hash: str | None = None


@dataclass(frozen=True)
class RunFailureAlert:
    run_id: str
    job: str
    checkpoint: str | None
    message: str
    failed_steps: tuple[str, ...] = ()  # "step_key: ErrorClass: first line of the message"


@dataclass(frozen=True)
class OverrideMoveAlert:
    checkpoint: str
    model_hash: str
    predecessor: str | None
    authority: str  # the override file's path, sha256 and commit
    actor: str
    reason: str
    sequence: int
    run_id: str | None


def escape(text: str) -> str:
    """Slack mrkdwn control characters (``&``, ``<``, ``>``) as entities, so text never becomes markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    quoted = escape(text).replace("`", "'")
    return f"`{quoted}`"


def _link(url: str, label: str) -> str:
    label = escape(label).replace("|", "/")
    return f"<{url}|{label}>"


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_url(ui_url: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/runs/{run_id}"


def check_url(ui_url: str, asset: str) -> str:
    return f"{ui_url.rstrip('/')}/assets/{asset}?view=checks"


def format_check_alert(alert: CheckAlert, ui_url: str) -> str:
    """The message for a failed or inconclusive gate check."""
    verdict = alert.outcome.upper() if alert.outcome else ("FAILED" if not alert.passed else "WARNED")
    icon = ":red_circle:" if not alert.passed else ":large_yellow_circle:"
    kind = "blocking check" if alert.blocking_check else "warning check"
    effect = "blocks promotion" if not alert.passed else "warning only, promotion not blocked"
    lines = [
        f"{icon} *Gate check {escape(verdict)}* · checkpoint {_code(alert.checkpoint or '(unpartitioned)')} · "
        f"rule {_code(alert.rule)} ({kind}; {effect})",
        f"observed {_number(alert.observed)}, CI [{_number(alert.ci_low)}, {_number(alert.ci_high)}] · "
        f"threshold {_number(alert.threshold)} · n {alert.n if alert.n is not None else 'n/a'}",
        f"reason: {escape(_clip(alert.reason, MAX_REASON_CHARS))}",
    ]
    context = []
    if alert.production:
        context.append(f"vs production {_code(alert.production)}")
    if alert.policy_hash:
        context.append(f"policy {_code(alert.policy_hash[:19])}")
    context.append(f"check {_code(alert.check)} on {_code(alert.asset)}")
    lines.append(" · ".join(context))
    lines.append(
        f"{_link(run_url(ui_url, alert.run_id), f'run {alert.run_id[:8]}')} · "
        f"{_link(check_url(ui_url, alert.asset), f'{alert.asset} checks')}"
    )
    return "\n".join(lines)


def format_run_failure(alert: RunFailureAlert, ui_url: str) -> str:
    """The message for a failed run."""
    lines = [
        f":x: *Run failed* · checkpoint {_code(alert.checkpoint or '(none)')} · job {_code(alert.job)}",
        escape(_clip(alert.message, MAX_REASON_CHARS)),
    ]
    lines.extend(f"• {escape(_clip(step, MAX_ERROR_CHARS))}" for step in alert.failed_steps[:5])
    if len(alert.failed_steps) > 5:
        lines.append(f"• … and {len(alert.failed_steps) - 5} more failed steps")
    lines.append(_link(run_url(ui_url, alert.run_id), f"run {alert.run_id}"))
    return "\n".join(lines)


def format_override_move(alert: OverrideMoveAlert, ui_url: str) -> str:
    """The announcement of a production move made by an override record (gate integrity: always visible)."""
    lines = [
        f":warning: *Production moved by override* · {_code(alert.checkpoint)} is production "
        f"(was {_code(alert.predecessor or '(none)')}), move #{alert.sequence}",
        f"override: {escape(alert.authority)}",
        f"model {_code(alert.model_hash)} · by {escape(alert.actor)}",
        f"reason: {escape(_clip(alert.reason, MAX_REASON_CHARS))}",
    ]
    if alert.run_id:
        lines.append(_link(run_url(ui_url, alert.run_id), f"run {alert.run_id}"))
    return "\n".join(lines)


def format_integrity_alert(error: str) -> str:
    return (
        ":rotating_light: *Production history does not verify*: the gate refuses to move production until it "
        f"is restored.\n{escape(_clip(error, MAX_REASON_CHARS))}"
    )


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


# -- reading events into alerts ---------------------------------------------------------------------------


def _meta(metadata: Mapping[str, Any], key: str) -> Any:
    value = metadata.get(key)
    return None if value is None else getattr(value, "value", value)


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def check_alert(
    evaluation: dg.AssetCheckEvaluation, *, run_id: str, checkpoint: str | None
) -> CheckAlert | None:
    """The alert for one check evaluation, or None when it passed and was not inconclusive."""
    metadata = evaluation.metadata
    outcome = str(_meta(metadata, "outcome") or "")
    if evaluation.passed and outcome not in ALERT_OUTCOMES:
        return None
    return CheckAlert(
        run_id=run_id,
        checkpoint=evaluation.partition or checkpoint,
        asset=evaluation.asset_key.to_user_string(),
        check=evaluation.check_name,
        rule=str(_meta(metadata, "rule") or evaluation.check_name),
        outcome=outcome or ("fail" if not evaluation.passed else ""),
        passed=evaluation.passed,
        blocking_check=bool(evaluation.blocking),
        observed=_float(_meta(metadata, "observed")),
        ci_low=_float(_meta(metadata, "ci_low")),
        ci_high=_float(_meta(metadata, "ci_high")),
        threshold=_float(_meta(metadata, "threshold")),
        n=_int(_meta(metadata, "n")),
        reason=str(_meta(metadata, "reason") or evaluation.description or ""),
        production=_meta(metadata, "production"),
        policy_hash=_meta(metadata, "policy_hash"),
    )


#: Dagster's wrappers around the error user code raised: the alert names the error inside
_WRAPPERS = frozenset({"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"})


def error_summary(error: Any) -> str:
    """``ErrorClass: first line`` of a ``SerializableErrorInfo``, looking through Dagster's wrappers."""
    while error.cls_name in _WRAPPERS and error.cause is not None:
        error = error.cause
    lines = [line.strip() for line in (error.message or "").strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if first.endswith(":") and len(lines) > 1:  # "1 blocking asset check failed ...:" then the check
        first = f"{first} {lines[1]}"
    for prefix in (f"{error.cls_name}: ",):
        if prefix in first:
            first = first.split(prefix, 1)[1]  # the message repeats the qualified class name
    return f"{error.cls_name}: {first}" if first else str(error.cls_name)


def _step_failure(entry: Any) -> str:
    event = entry.dagster_event
    error = event.step_failure_data.error if event and event.step_failure_data else None
    return f"{entry.step_key}: {error_summary(error)}" if error is not None else f"{entry.step_key}: failed"


def run_messages(instance: dg.DagsterInstance, record: Any, ui_url: str) -> list[str]:
    """Every message one ended run owes, in a fixed order (its check evaluations, then its failure)."""
    run_id: str = record.run_id
    run = instance.get_run_by_id(run_id)
    checkpoint = run.tags.get(PARTITION_TAG) if run else None
    messages = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.asset_check_evaluation_data if entry.dagster_event else None
        alert = check_alert(evaluation, run_id=run_id, checkpoint=checkpoint) if evaluation else None
        if alert is not None:
            messages.append(format_check_alert(alert, ui_url))
    event = record.event_log_entry.dagster_event
    if event is not None and event.event_type == dg.DagsterEventType.RUN_FAILURE:
        steps = tuple(
            _step_failure(entry)
            for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        )
        failure = RunFailureAlert(
            run_id=run_id, job=run.job_name if run else "?", checkpoint=checkpoint,
            message=event.message or "run failed", failed_steps=steps,
        )  # fmt: skip
        messages.append(format_run_failure(failure, ui_url))
    return messages


def _moved_at(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def override_move_alert(row: Mapping[str, Any]) -> OverrideMoveAlert | None:
    if row.get("authority_kind") != "override":
        return None
    run_id = row.get("run_id")
    return OverrideMoveAlert(
        checkpoint=str(row["checkpoint"]), model_hash=str(row.get("model_hash")),
        predecessor=None if row.get("predecessor") is None else str(row["predecessor"]),
        authority=str(row.get("authority")), actor=str(row.get("actor")), reason=str(row.get("reason") or ""),
        sequence=int(row["sequence"]), run_id=str(run_id) if run_id else None,
    )  # fmt: skip


# -- the cursor -------------------------------------------------------------------------------------------


@dataclass
class AlertCursor:
    since: float  # a sensor that never ran looks back to here, and no further
    after_storage_id: int | None = None  # run-end events up to here are fully handled
    sent_of_next: int = 0  # messages of the next run-end event already posted
    after_sequence: int | None = None  # production moves up to here are handled
    integrity: str | None = None  # digest of the integrity error last announced
    posted: int = field(default=0, compare=False)  # total, for the tick's summary

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str | None, *, lookback_s: float) -> "AlertCursor":
        if not text:
            return cls(since=time.time() - lookback_s)
        raw = json.loads(text)
        return cls(**{key: raw[key] for key in cls.__dataclass_fields__ if key in raw})


class _Stop(Exception):
    """Posting stopped this tick (budget spent, or Slack refused); the cursor says where to resume."""


@dataclass
class _Poster:
    slack: SlackAlerts
    budget: int
    log: Any
    posted: int = 0

    def post(self, text: str) -> None:
        if self.posted >= self.budget:
            raise _Stop(f"posted {self.posted} alerts, this tick's budget; the rest follow next tick")
        try:
            self.slack.post(redact(text, [self.slack.token]))
        except (SlackApiError, SlackClientError, OSError) as exc:
            why = redact(f"{type(exc).__name__}: {exc}", [self.slack.token])
            self.log.error(f"Slack did not take an alert (will retry next tick): {why}")
            raise _Stop(
                f"Slack did not take an alert after {self.posted} posted; retrying next tick: {why}"
            ) from exc
        self.posted += 1


def _run_end_records(instance: dg.DagsterInstance, cursor: AlertCursor, page: int) -> list[Any]:
    """Run-end events after the cursor, in storage order, complete up to the last one returned."""
    records: list[Any] = []
    bound: int | None = None
    for event_type in RUN_END_EVENTS:
        records_filter = dg.RunStatusChangeRecordsFilter(
            event_type,
            after_storage_id=cursor.after_storage_id,
            after_timestamp=cursor.since if cursor.after_storage_id is None else None,
        )
        result = instance.fetch_run_status_changes(records_filter, limit=page, ascending=True)
        records.extend(result.records)
        if len(result.records) == page:  # more of this type may follow: later ids are not known complete
            last = result.records[-1].storage_id
            bound = last if bound is None else min(bound, last)
    return sorted((r for r in records if bound is None or r.storage_id <= bound), key=lambda r: r.storage_id)


def _alert_runs(
    instance: dg.DagsterInstance, cursor: AlertCursor, poster: _Poster, ui_url: str, page: int
) -> None:
    for record in _run_end_records(instance, cursor, page):
        messages = run_messages(instance, record, ui_url)
        for index in range(cursor.sent_of_next, len(messages)):
            poster.post(messages[index])
            cursor.sent_of_next = index + 1
        cursor.after_storage_id = record.storage_id
        cursor.sent_of_next = 0


def _alert_moves(evalgate: EvalgateHome, cursor: AlertCursor, poster: _Poster, ui_url: str) -> None:
    ledger = evalgate.ledger()
    try:
        with ledger.locked():  # a move in progress holds the lock: never judge it half-written
            ledger.head()  # verifies the chain, the pointer file and the production manifest
            moves = ledger.moves()
    except ProductionIntegrityError as exc:
        digest = hashlib.sha256(str(exc).encode()).hexdigest()[:16]
        if cursor.integrity != digest:
            poster.post(format_integrity_alert(str(exc)))
            cursor.integrity = digest
        return
    cursor.integrity = None
    for row in moves:
        sequence = int(row["sequence"])  # type: ignore[call-overload]
        if cursor.after_sequence is not None and sequence <= cursor.after_sequence:
            continue
        moved_at = _moved_at(row.get("moved_at"))
        alert = override_move_alert(row)
        recent = cursor.after_sequence is not None or moved_at is None or moved_at >= cursor.since
        if alert is not None and recent:
            poster.post(format_override_move(alert, ui_url))
        cursor.after_sequence = sequence


def build_alerts_sensor(
    *,
    name: str = SENSOR_NAME,
    minimum_interval_seconds: int = 30,
    lookback_minutes: float = 60.0,
    max_messages_per_tick: int = 40,
    page_size: int = 100,
    default_status: dg.DefaultSensorStatus | None = None,
) -> dg.SensorDefinition:
    """The Slack alerts sensor. It needs the ``slack`` (:class:`resources.slack.SlackAlerts`) and ``evalgate``
    resources. ``default_status`` unset: running where ``$SLACK_BOT_TOKEN`` is set when the definitions
    load, stopped elsewhere (a machine without a token gets a stopped sensor, not a failing one)."""
    if default_status is None:
        configured = slack_token_configured()
        default_status = dg.DefaultSensorStatus.RUNNING if configured else dg.DefaultSensorStatus.STOPPED

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Posts to Slack once per failed or inconclusive gate check, once per failed run, once per "
        "production move made by an override, and once when the production history stops verifying; each "
        "with its numbers and a link to the run.",
    )
    def gate_alerts(
        context: dg.SensorEvaluationContext, slack: SlackAlerts, evalgate: EvalgateHome
    ) -> dg.SensorResult:
        cursor = AlertCursor.loads(context.cursor, lookback_s=lookback_minutes * 60)
        poster = _Poster(slack, max_messages_per_tick, context.log)
        stopped = None
        try:
            _alert_runs(context.instance, cursor, poster, slack.dagster_ui_url, page_size)
            _alert_moves(evalgate, cursor, poster, slack.dagster_ui_url)
        except _Stop as stop:
            stopped = str(stop)
        cursor.posted += poster.posted
        if poster.posted:
            context.log.info(f"posted {poster.posted} alert(s) to {slack.channel}")
        summary = stopped or (
            f"posted {poster.posted} alert(s)" if poster.posted else "nothing new to alert on"
        )
        return dg.SensorResult(cursor=cursor.dumps(), skip_reason=summary)

    return gate_alerts
