"""The local Dagster instance the CLI uses, and in-process evaluation of a checkpoint partition."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg

from eval_assets.checkpoints import CheckpointManifest, build_manifest
from eval_assets.defs.partitions import CHECKPOINTS
from eval_assets.paths import HomeLayout

#: The repository's dagster.yaml (the embedded default instance config).
DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def ensure_dagster_home(layout: HomeLayout) -> Path:
    """``$DAGSTER_HOME`` if set, else ``<home>/dagster`` holding a copy of the repository's dagster.yaml."""
    configured = os.environ.get("DAGSTER_HOME")
    home = Path(configured).expanduser().resolve() if configured else layout.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        if not DAGSTER_YAML.is_file():
            raise FileNotFoundError(
                f"{config} is missing and no default dagster.yaml was found at {DAGSTER_YAML}; "
                "write one or set DAGSTER_HOME to a directory that has one"
            )
        shutil.copyfile(DAGSTER_YAML, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def open_instance(layout: HomeLayout) -> dg.DagsterInstance:
    ensure_dagster_home(layout)
    return dg.DagsterInstance.get()


def register_checkpoint(
    instance: dg.DagsterInstance,
    registry_root: Path,
    path: Path,
    *,
    name: str,
    declared_hash: str | None = None,
    source: str = "cli",
) -> tuple[CheckpointManifest, bool]:
    """Hash, store and add the partition. Returns the manifest and whether it was new. Raises
    :class:`eval_assets.checkpoints.CheckpointError` with nothing registered on any problem."""
    from resources.checkpoint_registry import CheckpointRegistry

    manifest = build_manifest(path, name=name, declared_hash=declared_hash, source=source)
    registry = CheckpointRegistry(registry_root)
    added = registry.add(manifest)
    stored = registry.get(name)
    if not instance.has_dynamic_partition(CHECKPOINTS, name):
        instance.add_dynamic_partitions(CHECKPOINTS, [name])
        added = True
    return stored, added


def evaluate_partition(
    defs: dg.Definitions, instance: dg.DagsterInstance, checkpoint: str, *, log_level: str = "INFO"
) -> dg.ExecuteInProcessResult:
    """Materialize every asset of one checkpoint partition, checks included, in this process."""
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        partition_key=checkpoint,
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
