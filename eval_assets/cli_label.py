"""``evalgate label`` (the labelling page) and ``evalgate labels export|import|agreement``.

``cli.py`` adds these with one line: ``add_label_commands(sub)``. Errors are one line (exit 2)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eval_assets.human_eval import Agreement, HumanEvalStore

DEFAULT_PORT = 8765


def _store(args: argparse.Namespace) -> HumanEvalStore:
    from eval_assets.cli import _home_resource
    from eval_assets.human_eval import HumanEvalStore

    return HumanEvalStore(_home_resource(args).tables())


def cmd_label(args: argparse.Namespace) -> int:
    import uvicorn

    from eval_assets.labelling import build_app

    store = _store(args)
    sample = store.read_sample(args.checkpoint)
    if sample.height == 0:
        where = f"checkpoint {args.checkpoint!r}" if args.checkpoint else "any checkpoint"
        print(
            f"evalgate: error: no human_eval_sample rows for {where}: evaluate it first (`evalgate evaluate NAME` "
            "materializes human_eval_sample)",
            file=sys.stderr,
        )
        return 2
    rater = args.rater or os.environ.get("USER", "")
    print(
        f"labelling {sample.height} sampled items at http://{args.host}:{args.port}/ (Ctrl-C to stop)",
        flush=True,
    )
    uvicorn.run(build_app(store, args.checkpoint, default_rater=rater), host=args.host, port=args.port,
                log_level="warning")  # fmt: skip
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    count = _store(args).export_csv(Path(args.path), args.checkpoint)
    print(f"exported {count} labels to {args.path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    read, inserted = _store(args).import_csv(Path(args.path))
    print(f"imported {args.path}: {read} rows read, {inserted} new (the rest were already stored)")
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from eval_assets.dashboard import read_table
    from eval_assets.human_eval import (
        between_raters,
        classifier_vs_humans,
        judge_vs_humans,
        scorer_vs_humans,
    )

    store = _store(args)
    labels = store.read_labels(args.checkpoint)
    if labels.height == 0:
        print("evalgate: error: no human labels yet: label with `evalgate label`", file=sys.stderr)
        return 2
    tables = store.root
    rows = [
        *judge_vs_humans(labels, read_table(tables, "judge_verdicts", args.checkpoint)),
        *classifier_vs_humans(labels, read_table(tables, "refusal_labels", args.checkpoint)),
        *scorer_vs_humans(labels, read_table(tables, "item_scores", args.checkpoint)),
        *between_raters(labels),
    ]
    print(format_agreement(rows))
    return 0


def format_agreement(rows: list[Agreement]) -> str:
    """One line per agreement number: what, checkpoint (``*``: pooled), suite, n, kappa with its CI, raw
    agreement, or the reason kappa is undefined."""
    table = [("what", "checkpoint", "suite", "n", "kappa [95% CI] (method)", "raw agreement")]
    for r in rows:
        if r.kappa is None:
            kappa = f"- ({r.note})"
        else:
            kappa = f"{r.kappa:.3f} [{r.low:.3f}, {r.high:.3f}] ({r.statistic}, {r.method})"
        agreement = "-" if r.agreement is None else f"{r.agreement:.3f}"
        table.append((r.what, r.checkpoint, r.suite, str(r.n), kappa, agreement))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table
    )


def add_label_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    label = sub.add_parser("label", help="serve the labelling page for the sampled items (human_eval_sample)")
    label.add_argument(
        "--checkpoint", help="label this checkpoint's sample only (default: every checkpoint's)"
    )
    label.add_argument("--rater", help="the name filled in on the page (default $USER)")
    label.add_argument("--host", default="127.0.0.1")
    label.add_argument("--port", type=int, default=DEFAULT_PORT)
    label.set_defaults(func=cmd_label)

    labels = sub.add_parser("labels", help="human labels: CSV export and import, agreement").add_subparsers(
        dest="labels_command", required=True
    )
    export = labels.add_parser("export", help="write human_labels as CSV")
    export.add_argument("path")
    export.add_argument("--checkpoint")
    export.set_defaults(func=cmd_export)
    imported = labels.add_parser("import", help="add labels from a CSV (repeated rows are not stored twice)")
    imported.add_argument("path")
    imported.set_defaults(func=cmd_import)
    agreement = labels.add_parser("agreement", help="kappa: judge, classifiers and scorer vs humans; raters")
    agreement.add_argument("--checkpoint")
    agreement.set_defaults(func=cmd_agreement)
