"""Benchmark: re-materializing an unchanged checkpoint is served from the prediction cache (cold vs warm run).

In a throwaway evalgate home and Dagster instance (SQLite under the home, as the ``evalgate`` CLI uses, or
``--instance ephemeral``), register the SmolLM2-135M baseline GGUF from the pinned data package, then materialize
every asset of its partition twice through :func:`eval_assets.instance.evaluate_partition`:

* cold: empty prediction cache, so every item is a model call;
* warm: the same partition again, nothing changed, so every item should be a cache hit and no model is loaded.

The per-asset ``model_calls``, ``cache_hits`` and ``wall_seconds`` are read back from the materialization events
each run recorded in the instance; the whole-run wall time is measured around the in-process execution.

    .venv/bin/python benchmarks/bench_rematerialize.py [--profile smoke|full] [--suites arc_easy mmlu]
        [--keep-home DIR | --model-cache DIR] [--instance sqlite|ephemeral]

The GGUF → safetensors conversion (~20 s, once per model hash) is part of the cold run unless a converted copy
exists: ``--model-cache DIR`` links the home's model cache to DIR (for example ``/tmp/evalgate-cache``);
``--keep-home DIR`` keeps the whole home in DIR (its model cache reused, its other state cleared at start).
Exits 1 if the warm run made any model call (or the cold run made none: then nothing was measured cold),
2 if a run failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from eval_assets.datapkgs import SMOLLM2_GGUF, data_dir, data_file
from eval_assets.instance import evaluate_partition, open_instance, register_checkpoint
from eval_assets.paths import HomeLayout
from eval_assets.suites.spec import SuiteSpec, load_suite_specs
from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings

CHECKPOINT = "baseline"
#: Marks a directory as a benchmark home, so ``--keep-home`` never clears a directory it did not create.
HOME_MARKER = ".evalgate-bench-home"
#: What ``--keep-home`` keeps between invocations; everything else of the layout is cleared at start.
KEPT = {"model_cache", HOME_MARKER}
LAYOUT_ENTRIES = {"registry", "inbox", "tables", "model_cache", "checkpoints", "dagster", "production.json"}
#: Metadata read from each materialization.
FIELDS = ("items", "model_calls", "cache_hits", "wall_seconds")


@dataclass(frozen=True)
class RunNumbers:
    label: str
    success: bool
    wall_seconds: float
    #: CPU time of this process (all threads) during the run: less sensitive to other jobs than wall time
    cpu_seconds: float
    #: 1-minute load average sampled every few seconds during the run: (mean, max)
    load: tuple[float, float]
    #: asset key -> metadata values of FIELDS, for assets that report model calls
    per_asset: dict[str, dict[str, Any]]
    failures: list[str]

    @property
    def model_calls(self) -> int:
        return sum(int(m.get("model_calls") or 0) for m in self.per_asset.values())

    @property
    def items(self) -> int:
        return sum(int(m.get("items") or 0) for m in self.per_asset.values())

    @property
    def cache_hits(self) -> int:
        return sum(int(m.get("cache_hits") or 0) for m in self.per_asset.values())


def _parse_suites(values: list[str] | None, available: dict[str, SuiteSpec]) -> dict[str, SuiteSpec]:
    if not values:
        return dict(available)
    names = [name for value in values for name in value.split(",") if name]
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise SystemExit(f"unknown suite(s) {unknown}; the suites are {sorted(available)}")
    return {name: available[name] for name in names}


@contextmanager
def _home(keep_home: str | None) -> Iterator[HomeLayout]:
    """A temporary home, or ``keep_home`` with everything but its model cache cleared."""
    if keep_home is None:
        with tempfile.TemporaryDirectory(prefix="evalgate-bench-") as tmp:
            yield HomeLayout(Path(tmp))
        return
    root = Path(keep_home).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    entries = {entry.name for entry in root.iterdir()}
    if entries and HOME_MARKER not in entries:
        raise SystemExit(
            f"--keep-home {root}: the directory is not empty and was not created by this benchmark "
            f"(no {HOME_MARKER} file); pass an empty or new directory"
        )
    strangers = sorted(entries - LAYOUT_ENTRIES - KEPT)
    if strangers:
        raise SystemExit(f"--keep-home {root}: unexpected entries {strangers}; not clearing it")
    for name in sorted(entries - KEPT):
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    (root / HOME_MARKER).touch()
    yield HomeLayout(root)


def _link_model_cache(layout: HomeLayout, model_cache: str) -> None:
    target = Path(model_cache).expanduser().resolve()
    target.mkdir(parents=True, exist_ok=True)
    link = layout.model_cache
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise SystemExit(f"{link} is a real directory (kept by --keep-home); drop --model-cache or move it")
    layout.root.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)


def _instance(kind: str, layout: HomeLayout) -> dg.DagsterInstance:
    if kind == "ephemeral":
        return dg.DagsterInstance.ephemeral()
    # The CLI's instance: the repository's dagster.yaml (SQLite) under <home>/dagster. Point DAGSTER_HOME there
    # explicitly, so a DAGSTER_HOME from the caller's environment is never written to.
    os.environ["DAGSTER_HOME"] = str(layout.dagster_home)
    return open_instance(layout)


def _materialization_metadata(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str, run_id: str
) -> dict[str, Any]:
    """The metadata of the latest materialization of ``key``/``partition``, which must come from ``run_id``."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    if not records or records[0].run_id != run_id:
        raise RuntimeError(
            f"{key.to_user_string()}: no materialization of partition {partition} in run {run_id}"
        )
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {name: value.value for name, value in materialization.metadata.items()}


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    messages: list[str] = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            messages.append(f"step {event.step_key}: {error.message.strip() if error else event.message}")
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            messages.append(f"check {evaluation.asset_check_key.to_user_string()} failed")
    return messages


@contextmanager
def _load_sampler(interval: float = 2.0) -> Iterator[list[float]]:
    """Samples the 1-minute load average every ``interval`` seconds while the block runs."""
    samples = [os.getloadavg()[0]]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            samples.append(os.getloadavg()[0])

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()
        samples.append(os.getloadavg()[0])


def _run(label: str, defs: dg.Definitions, instance: dg.DagsterInstance) -> RunNumbers:
    with _load_sampler() as load:
        started, cpu_started = time.perf_counter(), time.process_time()
        result = evaluate_partition(defs, instance, CHECKPOINT, log_level="ERROR")
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    per_asset: dict[str, dict[str, Any]] = {}
    keys = {
        event.asset_key for event in result.get_asset_materialization_events() if event.asset_key is not None
    }
    for key in sorted(keys, key=lambda k: k.to_user_string()):
        metadata = _materialization_metadata(instance, key, CHECKPOINT, result.run_id)
        if "model_calls" in metadata or "cache_hits" in metadata:
            per_asset[key.to_user_string()] = {name: metadata.get(name) for name in FIELDS}
    return RunNumbers(
        label=label,
        success=result.success,
        wall_seconds=wall,
        cpu_seconds=cpu,
        load=(sum(load) / len(load), max(load)),
        per_asset=per_asset,
        failures=_failures(result),
    )


def _cell(value: Any, fmt: str = "") -> str:
    if value is None:
        return "-"
    return format(value, fmt)


def _print_table(cold: RunNumbers, warm: RunNumbers) -> None:
    keys = sorted(set(cold.per_asset) | set(warm.per_asset))
    width = max([len("whole run"), *(len(k) for k in keys)])
    columns = f"{'items':>6} {'calls':>6} {'hits':>6} {'wall s':>8}"
    header = f"{'':<{width}} | {'cold':^{len(columns)}} | {'warm':^{len(columns)}}"
    print(header)
    print(f"{'asset':<{width}} | {columns} | {columns}")
    print("-" * len(header))

    def cells(m: dict[str, Any]) -> str:
        return (
            f"{_cell(m.get('items')):>6} {_cell(m.get('model_calls')):>6} {_cell(m.get('cache_hits')):>6} "
            f"{_cell(m.get('wall_seconds'), '.2f'):>8}"
        )

    for key in keys:
        print(f"{key:<{width}} | {cells(cold.per_asset.get(key, {}))} | {cells(warm.per_asset.get(key, {}))}")
    print("-" * len(header))

    def totals(run: RunNumbers) -> str:
        return f"{run.items:>6} {run.model_calls:>6} {run.cache_hits:>6} {run.wall_seconds:>8.2f}"

    print(f"{'whole run':<{width}} | {totals(cold)} | {totals(warm)}")
    print(
        "(calls: model requests, one per answer choice of a likelihood item or per generated sample; hits: items "
        "served from the prediction cache; asset wall s: the asset's own timing; whole run: evaluate_partition "
        "wall time, Dagster, scoring and Delta writes included)"
    )
    print(
        f"warm/cold wall-time ratio: {warm.wall_seconds / cold.wall_seconds:.3f} "
        f"(cold {cold.wall_seconds:.1f} s, warm {warm.wall_seconds:.1f} s)"
    )
    for run in (cold, warm):
        print(
            f"{run.label}: wall {run.wall_seconds:.1f} s, CPU time of this process {run.cpu_seconds:.1f} s, "
            f"1-min load average during the run mean {run.load[0]:.2f} / max {run.load[1]:.2f} "
            f"on {os.cpu_count()} CPUs"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profile", choices=("smoke", "full"), default="smoke")
    parser.add_argument("--suites", nargs="+", metavar="SUITE", help="a subset of the suites (default: all)")
    parser.add_argument(
        "--keep-home", metavar="DIR", help="keep the evalgate home in DIR (model cache reused)"
    )
    parser.add_argument("--model-cache", metavar="DIR", help="link the home's model cache to DIR")
    parser.add_argument("--instance", choices=("sqlite", "ephemeral"), default="sqlite")
    parser.add_argument("--batch-size", type=int, default=8, help="ModelRunner.batch_size")
    parser.add_argument("--data-dir", type=Path, default=None, help="data packages (default: evalgate's)")
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    # imported here: the module builds its default Definitions on import, after the filters above
    from eval_assets.definitions import build_definitions

    data_root = (args.data_dir or data_dir()).expanduser().resolve()
    specs = _parse_suites(args.suites, load_suite_specs())
    gguf = data_file(SMOLLM2_GGUF, data_root)

    with _home(args.keep_home) as layout:
        layout.root.mkdir(parents=True, exist_ok=True)
        if args.model_cache:
            _link_model_cache(layout, args.model_cache)
        instance = _instance(args.instance, layout)
        try:
            defs = build_definitions(
                specs=specs,
                evalgate=EvalgateHome(home=str(layout.root)),
                suite_settings=SuiteSettings(profile=args.profile, data_dir=str(data_root)),
                model_runner=ModelRunner(batch_size=args.batch_size),
            )
            manifest, _ = register_checkpoint(
                instance, layout.registry, gguf, name=CHECKPOINT, source="benchmark"
            )
            converted = (layout.model_cache / manifest.model_hash.replace(":", "-") / "config.json").is_file()
            print(
                f"home {layout.root} | instance {args.instance} | profile {args.profile} | "
                f"suites {', '.join(sorted(specs))}"
            )
            print(
                f"checkpoint {CHECKPOINT}: {gguf.name} ({manifest.model_hash[:19]}…); GGUF conversion "
                f"{'already cached' if converted else 'included in the cold run'}"
            )
            print(
                f"python {platform.python_version()}, dagster {dg.__version__}, {os.cpu_count()} CPUs "
                f"(shared; load average {os.getloadavg()[0]:.2f} at start)\n"
            )
            cold = _run("cold", defs, instance)
            warm = _run("warm", defs, instance)
        finally:
            instance.dispose()

    _print_table(cold, warm)
    status = 0
    for run in (cold, warm):
        if not run.success:
            print(f"\nFAIL: the {run.label} run did not succeed:", file=sys.stderr)
            for failure in run.failures:
                print(f"  {failure}", file=sys.stderr)
            status = 2
    if status:
        return status
    if cold.model_calls == 0:
        print("\nFAIL: the cold run made no model call; the prediction cache was not cold", file=sys.stderr)
        return 1
    if warm.model_calls:
        offenders = [k for k, m in warm.per_asset.items() if m.get("model_calls")]
        print(
            f"\nFAIL: the warm run made {warm.model_calls} model calls ({', '.join(offenders)})",
            file=sys.stderr,
        )
        return 1
    print("\nOK: the warm run made no model call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
