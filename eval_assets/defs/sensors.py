"""The checkpoint inbox sensor: a manifest file dropped into ``<home>/inbox`` becomes a checkpoint partition."""

import json

import dagster as dg

from eval_assets.checkpoints import CheckpointError, manifest_from_inbox
from eval_assets.defs.partitions import CHECKPOINTS, checkpoints
from resources.evalgate import EvalgateHome

INBOX_SUFFIXES = (".yaml", ".yml", ".json")


@dg.sensor(
    name="checkpoint_inbox",
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers checkpoint manifests dropped into the inbox and adds their partitions.",
)
def checkpoint_inbox(context: dg.SensorEvaluationContext, evalgate: EvalgateHome) -> dg.SensorResult:
    """Each file is handled once per (name, mtime): a malformed one is logged with its file and field and
    retried only when it changes."""
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    inbox = evalgate.layout.inbox
    registry = evalgate.registry()
    new_partitions: list[str] = []
    if inbox.is_dir():
        for file in sorted(inbox.iterdir()):
            if file.suffix not in INBOX_SUFFIXES or not file.is_file():
                continue
            stamp = file.stat().st_mtime_ns
            if seen.get(file.name) == stamp:
                continue
            seen[file.name] = stamp
            try:
                manifest = manifest_from_inbox(file)
                registry.add(manifest)
            except CheckpointError as exc:
                context.log.error(f"checkpoint inbox: {exc}")
                continue
            if not context.instance.has_dynamic_partition(CHECKPOINTS, manifest.name):
                new_partitions.append(manifest.name)
                context.log.info(f"registered checkpoint {manifest.name} ({manifest.model_hash}) from {file}")
    return dg.SensorResult(
        dynamic_partitions_requests=[checkpoints.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(seen, sort_keys=True),
    )
