"""The local Dagster instance the CLI uses, and in-process evaluation of a checkpoint partition."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import yaml

from eval_assets.checkpoints import CheckpointManifest, build_manifest
from eval_assets.defs.partitions import CHECKPOINTS
from eval_assets.paths import HomeLayout

REPO = Path(__file__).resolve().parent.parent
#: The repository's dagster.yaml (the embedded default instance config: SQLite under DAGSTER_HOME).
DAGSTER_YAML = REPO / "dagster.yaml"
#: The PostgreSQL instance config (dagster-postgres; connection from EVALGATE_PG_* and libpq's variables).
POSTGRES_YAML = REPO / "deploy" / "dagster.postgres.yaml"
#: The one setting that selects the instance config a new DAGSTER_HOME gets: sqlite (default) or postgres.
INSTANCE_ENV = "EVALGATE_INSTANCE"
INSTANCE_CONFIGS = {"sqlite": DAGSTER_YAML, "postgres": POSTGRES_YAML}
POSTGRES_ENV = ("EVALGATE_PG_HOST", "EVALGATE_PG_PORT", "EVALGATE_PG_USER", "EVALGATE_PG_DB")


class InstanceConfigError(ValueError):
    """The selected instance config cannot be used (unknown kind, missing connection settings, or a
    DAGSTER_HOME whose own dagster.yaml uses other storage)."""


def selected_instance_config() -> tuple[str, Path]:
    """``$EVALGATE_INSTANCE`` (``sqlite`` unless set) and the repository config it names."""
    kind = os.environ.get(INSTANCE_ENV, "").strip().lower() or "sqlite"
    if kind not in INSTANCE_CONFIGS:
        raise InstanceConfigError(f"{INSTANCE_ENV}={kind!r} is not one of {sorted(INSTANCE_CONFIGS)}")
    if kind == "postgres":
        missing = [name for name in POSTGRES_ENV if not os.environ.get(name)]
        if missing:
            raise InstanceConfigError(
                f"{INSTANCE_ENV}=postgres needs {', '.join(missing)} (and PGPASSWORD or ~/.pgpass unless the "
                "server trusts this host): see deploy/dagster.postgres.yaml"
            )
    return kind, INSTANCE_CONFIGS[kind]


def storage_kind(config_text: str) -> str:
    """Which storage a dagster.yaml uses: ``sqlite`` (also Dagster's default when it names none), ``postgres``
    or another."""
    config = yaml.safe_load(config_text) or {}
    storage = config.get("storage")
    if isinstance(storage, dict) and storage:
        return str(next(iter(storage)))
    module = str((config.get("run_storage") or {}).get("module", ""))
    return "postgres" if "postgres" in module else "mysql" if "mysql" in module else "sqlite"


def ensure_dagster_home(layout: HomeLayout) -> Path:
    """``$DAGSTER_HOME`` if set, else ``<home>/dagster``, holding a copy of the instance config
    ``$EVALGATE_INSTANCE`` selects (default: the repository's dagster.yaml, SQLite). With the setting given,
    a copy of the other repository config is replaced, and a hand-written dagster.yaml on other storage is
    refused rather than silently used."""
    kind, template = selected_instance_config()
    configured = os.environ.get("DAGSTER_HOME")
    home = Path(configured).expanduser().resolve() if configured else layout.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not template.is_file():
        raise FileNotFoundError(
            f"no {kind} instance config at {template}; write {config} yourself or set DAGSTER_HOME to a directory "
            "that has one"
        )
    if not config.exists():
        shutil.copyfile(template, config)
    elif os.environ.get(INSTANCE_ENV) and (
        current := config.read_text(encoding="utf-8")
    ) != template.read_text(encoding="utf-8"):
        ours = {path.read_text(encoding="utf-8") for path in INSTANCE_CONFIGS.values() if path.is_file()}
        if current in ours:
            shutil.copyfile(template, config)  # our unmodified copy of the other config: switch
        elif storage_kind(current) != kind:
            raise InstanceConfigError(
                f"{config} uses {storage_kind(current)} storage but {INSTANCE_ENV}={kind}: it is not a copy "
                f"evalgate made, so it is left alone. Delete it to get {template.name}, or unset {INSTANCE_ENV}."
            )
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def open_instance(layout: HomeLayout) -> dg.DagsterInstance:
    """The CLI's instance. Runs an earlier CLI process left STARTED when it died (SIGKILL, OOM, power loss)
    are marked failed first: nothing else would ever end them."""
    ensure_dagster_home(layout)
    instance = dg.DagsterInstance.get()
    mark_interrupted_runs(instance)
    return instance


#: Tags an in-process CLI run carries: which process on which host executes it, and that process's start
#: (boot id and start tick), so a reused pid is not mistaken for the run's process.
TAG_HOST = "evalgate/host"
TAG_PID = "evalgate/pid"
TAG_PROCESS = "evalgate/process_start"
TAG_SUITES = "evalgate/suites"


def process_start(pid: int) -> str | None:
    """``<boot id>:<start tick>`` of a live process (Linux ``/proc``), or None where it cannot be read
    (not running, or no ``/proc``)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    return f"{boot}:{fields[19]}"  # field 22 of stat: start time in clock ticks since boot


def process_tags() -> dict[str, str]:
    pid = os.getpid()
    return {TAG_HOST: socket.gethostname(), TAG_PID: str(pid), TAG_PROCESS: process_start(pid) or ""}


def run_process_alive(tags: dict[str, str]) -> bool | None:
    """Whether the CLI process that executes a run with these tags is still running: None when that cannot be
    told from here (another host, or a run evalgate's CLI did not start)."""
    if tags.get(TAG_HOST) != socket.gethostname() or not tags.get(TAG_PID, "").isdigit():
        return None
    started = process_start(int(tags[TAG_PID]))
    if started is None:
        return False
    return not tags.get(TAG_PROCESS) or started == tags[TAG_PROCESS]


def mark_interrupted_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every STARTED (or STARTING) run that an evalgate CLI process on this host executed and whose
    process is gone. Returns their run ids. Runs of other hosts, of live processes, and of the daemon or
    ``dagster dev`` (no evalgate process tags; Dagster's run monitoring watches those) are left alone."""
    active = instance.get_runs(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    )
    marked = []
    for run in active:
        if run_process_alive(dict(run.tags)) is False:
            instance.report_run_failed(
                run,
                message=f"interrupted: the evalgate process (pid {run.tags[TAG_PID]} on {run.tags[TAG_HOST]}) "
                "that executed this run ended without finishing it; marked failed by the next evalgate command",
            )
            marked.append(run.run_id)
    return marked


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


class UnknownSuiteError(ValueError):
    """``--suite`` names a suite these definitions do not have."""


def suite_selection(defs: dg.Definitions, suites: Sequence[str]) -> list[dg.AssetKey]:
    """The assets that evaluate only ``suites``: each suite's own assets (keys ending in its name:
    predictions, the kind's stages, scores, comparison) and the checkpoint manifest they read. Promotion is
    left out: it needs every suite's checks, so a partial evaluation never moves production."""
    graph = defs.resolve_asset_graph()
    keys = [key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable]
    known = sorted({key.path[-1] for key in keys if len(key.path) > 1})
    unknown = [name for name in suites if name not in known]
    if unknown:
        raise UnknownSuiteError(
            f"no suite named {', '.join(map(repr, unknown))}: the suites are {', '.join(known)} "
            "(`evalgate suites list`; your own with --suites-dir)"
        )
    return sorted(
        (
            key
            for key in keys
            if (len(key.path) > 1 and key.path[-1] in suites) or key.path == ["checkpoint_manifest"]
        ),
        key=lambda key: key.to_user_string(),
    )


def evaluate_partition(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    checkpoint: str,
    *,
    log_level: str = "INFO",
    suites: Sequence[str] = (),
) -> dg.ExecuteInProcessResult:
    """Materialize every asset of one checkpoint partition (or only those of ``suites``), checks included, in
    this process. The run is tagged with this process, so that if the process dies the next CLI start marks
    the run failed (:func:`mark_interrupted_runs`)."""
    job = defs.resolve_implicit_global_asset_job_def()
    tags = process_tags()
    if suites:
        tags[TAG_SUITES] = ",".join(suites)
    return job.execute_in_process(
        partition_key=checkpoint,
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        asset_selection=suite_selection(defs, suites) if suites else None,
        tags=tags,
    )
