"""``evalgate judge validate --pairs FILE.jsonl [--judge NAME] --out PICKS.csv``: a judge's picks on a user's
pairwise set, in both orders, and (when the rows carry human labels) its agreement and Cohen's kappa.

Rows: ``id, query, answer_a, answer_b`` and optionally ``human`` (``A`` or ``B``). Writes ``id, pick`` (A, B or
tie after both orders; ``error`` when a verdict could not be had). ``--judge``: ``embedded`` (default),
``anthropic`` or ``anthropic:<dated model id>`` (key from ``$ANTHROPIC_API_KEY``), or ``openai`` (the ``judge``
section of the evalgate config gives its base URL, model and model hash). ``cli.py`` adds this with one line:
``add_judge_commands(sub)``. Exit codes: 0 done, 2 bad input (one line naming the file, line and field).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path
from typing import Any

from eval_assets.paths import HomeLayout, default_home


def judge_resource(name: str | None) -> Any:
    """The judge resource for ``--judge`` (the config's ``judge`` section, then the name's backend and model)."""
    from resources.judge import JudgeResource

    fields: dict[str, Any] = {}
    try:
        from eval_assets.config import load_config

        fields = dict(load_config().config.judge or {})
    except Exception:  # no usable config: the flags and defaults decide
        fields = {}
    fields = {k: v for k, v in fields.items() if k in JudgeResource.model_fields and not isinstance(v, dict)}
    if name:
        backend, _, model = name.partition(":")
        if backend not in ("embedded", "anthropic", "openai"):
            raise ValueError(f"--judge {name!r}: choose embedded, anthropic[:<model id>] or openai")
        fields["backend"] = backend
        if model:
            fields["model"] = model
    if fields.get("backend") == "anthropic" and not fields.get("api_key"):
        fields["api_key"] = os.environ.get("ANTHROPIC_API_KEY")
    return JudgeResource(**fields)


def cmd_judge_validate(args: argparse.Namespace) -> int:
    from eval_assets.datapkgs import data_dir
    from eval_assets.judge import JudgeCache, ValidationDataError, load_pairs_file, validate

    try:
        pairs = load_pairs_file(Path(args.pairs))
        judge = judge_resource(args.judge)
        backend = judge.open(data_dir())
    except (ValidationDataError, ValueError, OSError) as exc:
        print(f"evalgate judge validate: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    home = HomeLayout(
        Path(args.home).expanduser().resolve() if getattr(args, "home", None) else default_home()
    )
    cache = JudgeCache(home.root / "judge_cache" / "verdicts.sqlite")
    print(f"judging {len(pairs)} pairs in both orders with {backend.identity.judge_id}", flush=True)
    from eval_assets.console import progress_display

    try:
        with progress_display():
            result = validate(backend, pairs, dataset=Path(args.pairs).name, cache=cache,
                              max_tokens=judge.max_tokens, max_parse_retries=judge.max_parse_retries)  # fmt: skip
    finally:
        cache.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "pick"])
        for pair in pairs:
            writer.writerow([pair.pair_id, result.picks[pair.pair_id]])
    picks = list(result.picks.values())
    print(f"wrote {out}: {picks.count('A')} A, {picks.count('B')} B, {picks.count('tie')} tie, "
          f"{picks.count('error')} error; cost ${result.cost_usd:.4f}")  # fmt: skip
    if result.n_labelled:
        print(result.summary())
    else:
        print("no human labels (`human`: A or B) in the file: agreement and kappa not computed")
    return 0


def add_judge_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``judge validate`` to the ``evalgate`` parser's subcommands."""
    judge = sub.add_parser("judge", help="the LLM judge: validate it against your labelled pairs")
    inner = judge.add_subparsers(dest="judge_command", required=True)
    validate_cmd = inner.add_parser(
        "validate", help="a judge's picks (both orders) and its kappa against labels"
    )
    validate_cmd.add_argument(
        "--pairs", required=True, help="JSONL rows: id, query, answer_a, answer_b[, human]"
    )
    validate_cmd.add_argument("--judge", help="embedded (default), anthropic[:<model id>] or openai")
    validate_cmd.add_argument("--out", required=True, help="the picks, as CSV: id, pick")
    validate_cmd.set_defaults(func=cmd_judge_validate)
