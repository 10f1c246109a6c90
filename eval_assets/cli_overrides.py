"""``evalgate override new|check|list|apply``: write, validate and apply committed override records."""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path
from typing import Any

from eval_assets.gate import ROLLBACK, OverrideStatus


def _context(args: argparse.Namespace) -> tuple[Any, Any, set[str]]:
    from eval_assets.cli import _home_resource, _policy
    from eval_assets.gate import overridable_rules

    home = _home_resource(args)
    policy = _policy(args)
    return home, policy, overridable_rules()


def _validate(args: argparse.Namespace, checkpoint: str, file: Path) -> OverrideStatus:
    from eval_assets.overrides import validate_override

    home, policy, known = _context(args)
    manifest = home.registry().get(checkpoint)
    return validate_override(
        file,
        checkpoint=checkpoint,
        model_hash=manifest.model_hash,
        policy=policy.overrides,
        known_rules=known,
    )


def cmd_override_new(args: argparse.Namespace) -> int:
    from eval_assets.overrides import OverrideRecord, write_override

    home, policy, known = _context(args)
    manifest = home.registry().get(args.checkpoint)
    unknown = sorted(set(args.rule) - known)
    if unknown:
        raise ValueError(f"unknown rule(s) {unknown}: the rules are {sorted(known)}")
    record = OverrideRecord(
        checkpoint=manifest.name, model_hash=manifest.model_hash, rules=tuple(args.rule),
        justification=args.justification, pull_request=args.pr, approver=args.approver,
        expires=date.fromisoformat(args.expires), created_by=os.environ.get("USER", ""),
        created_at=date.today().isoformat(),
    )  # fmt: skip
    file = write_override(home.overrides(), record)
    print(
        f"wrote {file}: lifts {list(record.rules)} for {manifest.name} ({manifest.model_hash}) until {record.expires}"
    )
    if policy.overrides.require_committed:
        print(
            "commit it through the reviewed pull request, then `evalgate override apply "
            + manifest.name
            + "`"
        )
    return 0


def cmd_override_check(args: argparse.Namespace) -> int:
    from eval_assets.overrides import override_path

    home, _policy, _known = _context(args)
    file = (
        Path(args.target)
        if args.target.endswith((".yaml", ".yml"))
        else override_path(home.overrides(), args.target)
    )
    checkpoint = file.stem
    status = _validate(args, checkpoint, file)
    if status.valid:
        print(f"valid: {file} lifts {sorted(status.rules)} for {checkpoint} ({status.authority})")
        return 0
    print(f"refused: {file}: " + "; ".join(status.problems))
    return 1


def cmd_override_list(args: argparse.Namespace) -> int:
    home, _policy, _known = _context(args)
    directory = home.overrides()
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    if not files:
        print(f"no override records in {directory}")
        return 0
    for file in files:
        try:
            status = _validate(args, file.stem, file)
            verdict = "valid" if status.valid else "refused: " + "; ".join(status.problems)
        except ValueError as exc:  # e.g. the checkpoint is not registered
            verdict = f"refused: {exc}"
        print(f"{file.stem}: {verdict}")
    return 0


def cmd_override_apply(args: argparse.Namespace) -> int:
    """Run the gate's ``promotion`` alone for the checkpoint: it reads the override record itself."""
    import dagster as dg

    from eval_assets.cli import _definitions
    from eval_assets.instance import open_instance

    home, _policy, _known = _context(args)
    status = _validate(args, args.checkpoint, home.overrides() / f"{args.checkpoint}.yaml")
    if not status.valid:
        print(f"refused: override for {args.checkpoint}: " + "; ".join(status.problems))
        return 1
    job = _definitions(args).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        partition_key=args.checkpoint, instance=open_instance(home.layout),
        asset_selection=[dg.AssetKey("promotion")], raise_on_error=False,
    )  # fmt: skip
    if not result.success:
        print(f"evalgate: error: the promotion run for {args.checkpoint} failed (run {result.run_id})")
        return 2
    outcome = result.output_for_node("promotion")
    print(f"promotion: {outcome['outcome']}: {outcome['reason']}")
    return 0 if outcome["outcome"] == "promoted" else 1


def add_override_commands(sub: Any) -> None:
    override = sub.add_parser(
        "override", help="override records: the one way besides the gate to move production"
    )
    commands = override.add_subparsers(dest="override_command", required=True)
    new = commands.add_parser(
        "new", help="write overrides/<checkpoint>.yaml (commit it through a reviewed PR)"
    )
    new.add_argument("checkpoint")
    new.add_argument(
        "--rule", action="append", required=True, help=f"a gate rule it lifts (repeat), or {ROLLBACK}"
    )
    new.add_argument("--justification", required=True)
    new.add_argument("--pr", required=True, help="the pull request's URL")
    new.add_argument("--approver", required=True)
    new.add_argument(
        "--expires", required=True, help="YYYY-MM-DD (at most the policy's overrides.max_days away)"
    )
    new.set_defaults(func=cmd_override_new)
    check = commands.add_parser("check", help="validate a record: schema, weights, expiry, committed")
    check.add_argument("target", help="a checkpoint name or an override file")
    check.set_defaults(func=cmd_override_check)
    listing = commands.add_parser("list", help="every override record and whether the gate accepts it")
    listing.set_defaults(func=cmd_override_list)
    apply = commands.add_parser("apply", help="run the gate's promotion for the checkpoint with its record")
    apply.add_argument("checkpoint")
    apply.add_argument("--profile", default="smoke", choices=["smoke", "full"])
    apply.add_argument("--batch-size", type=int, default=8)
    apply.set_defaults(func=cmd_override_apply)
