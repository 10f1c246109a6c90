"""``evalgate refusal classify --completions FILE.csv --out LABELS.csv [--classifier NAME]``: label completions
with a refusal classifier, outside any checkpoint.

Input: a CSV with columns ``id``, ``prompt``, ``completion`` (other columns are carried through unchanged).
Output: the same rows and columns plus ``label`` (``compliance``, ``refusal``, ``partial``; ``error`` when the
classifier could not label one). ``--classifier``: ``embedded`` (default, no network), ``string_match``, or
``claude`` (``$ANTHROPIC_API_KEY``, optional ``$ANTHROPIC_BASE_URL``). Exit codes: 0 labelled; 2 bad input, printed
as one line naming the file, the row or column, and what to do.

``cli.py`` adds this with one line: ``add_refusal_commands(sub)``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from eval_assets.datapkgs import DataPackageError

REQUIRED = ("id", "prompt", "completion")
LABEL_COLUMN = "label"


class CompletionsFileError(ValueError):
    """The completions file is unreadable or malformed; the message names the file and what is wrong."""


def read_completions(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a completions CSV, checked: required columns, no ``label`` column, unique ids."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CompletionsFileError(f"{path}: cannot read the completions CSV ({exc})") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CompletionsFileError(
            f"{path}: missing column(s) {', '.join(missing)}; a completions file needs columns id, prompt, "
            f"completion (found: {', '.join(header) or 'none'})"
        )
    if LABEL_COLUMN in header:
        raise CompletionsFileError(
            f"{path}: already has a `label` column; rename it, the output adds `label`"
        )
    seen: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        if None in row or any(row.get(c) is None for c in REQUIRED):
            raise CompletionsFileError(
                f"{path}:{line}: the row has a different number of fields than the header"
            )
        if not row["id"].strip():
            raise CompletionsFileError(f"{path}:{line}: field `id` is empty")
        if row["id"] in seen:
            raise CompletionsFileError(f"{path}:{line}: id {row['id']!r} repeats line {seen[row['id']]}")
        seen[row["id"]] = line
    return header, rows


def cmd_refusal_classify(args: argparse.Namespace) -> int:
    from resources.refusal import Exchange
    from resources.refusal_classifier import BACKENDS, build_classifier

    source, out = Path(args.completions), Path(args.out)
    try:
        if args.classifier not in BACKENDS:
            raise CompletionsFileError(
                f"--classifier {args.classifier!r}: choose one of {', '.join(BACKENDS)}"
            )
        header, rows = read_completions(source)
        classifier = build_classifier(
            args.classifier,
            api_key=os.environ.get("ANTHROPIC_API_KEY"),
            base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
        )
        labels = classifier.classify([Exchange(r["prompt"], r["completion"]) for r in rows])
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[*header, LABEL_COLUMN])
            writer.writeheader()
            for row, label in zip(rows, labels, strict=True):
                writer.writerow(row | {LABEL_COLUMN: label})
        tmp.replace(out)
    except (CompletionsFileError, DataPackageError, ValueError, OSError) as exc:
        print(f"evalgate refusal classify: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    print(f"{len(rows)} completions labelled by {classifier.id} -> {out}: " +
          ", ".join(f"{k} {v}" for k, v in counts.items()))  # fmt: skip
    return 0


def add_refusal_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``refusal classify`` to the ``evalgate`` parser's subcommands."""
    refusal = sub.add_parser(
        "refusal", help="refusal classifiers: label completions as compliance/refusal/partial"
    )
    inner = refusal.add_subparsers(dest="refusal_command", required=True)
    classify = inner.add_parser(
        "classify", help="label a CSV of completions (columns id, prompt, completion)"
    )
    classify.add_argument(
        "--completions", required=True, help="CSV with columns id, prompt, completion (+ any)"
    )
    classify.add_argument("--out", required=True, help="where to write the CSV with a `label` column added")
    classify.add_argument(
        "--classifier", default="embedded", help="embedded (default, no network), string_match, or claude"
    )
    classify.set_defaults(func=cmd_refusal_classify)
