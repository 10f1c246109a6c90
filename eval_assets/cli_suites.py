"""``evalgate suites list`` and ``evalgate suites check PATH``: the suites evalgate would evaluate (built-in and
the user's), and a user spec validated with its data before it goes near a model.

``cli.py`` adds these with one line: ``add_suites_commands(sub)``. Each command takes the parsed
``argparse.Namespace`` (``.suites_dir`` and ``.data_dir`` optional; ``.home`` is not needed) and returns the
exit code: 0 when everything is fine, 2 on an error, which is printed as one line naming the file and field.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import TextIO

from eval_assets.datapkgs import DataPackageError, data_dir
from eval_assets.suites.items import GenerationItem, Item, LikelihoodItem
from eval_assets.suites.spec import (
    SUITES_DIR_ENV,
    SuiteSpec,
    SuiteSpecError,
    builtin_spec_paths,
    load_suite_spec,
    resolve_suites_dir,
    suite_specs_from,
)

#: Errors a user's spec or data can cause; anything else is a bug and propagates.
USER_ERRORS = (SuiteSpecError, DataPackageError, ValueError, KeyError, FileNotFoundError, OSError)
#: Characters of a rendered prompt shown by ``suites check`` (the head and the tail, around an ellipsis).
SHOWN_CHARS = 1200


def one_line(error: BaseException) -> str:
    """A possibly multi-line error message as one line: ``file: what: field `x`: problem; field `y`: ...``."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    head, rest = lines[0], lines[1:]
    return head + (": " + "; ".join(rest) if rest else "")


def _data_root(args: argparse.Namespace) -> Path:
    configured = getattr(args, "data_dir", None)
    return Path(configured).expanduser().resolve() if configured else data_dir()


def _count(spec: SuiteSpec, profile: str, total: int) -> str:
    limit = spec.profile(profile).limit
    selected = total if limit is None else min(limit, total)
    samples = spec.samples(profile)
    return f"{selected}×{samples}" if samples > 1 else str(selected)


def _total(spec: SuiteSpec, data_root: Path) -> int:
    from eval_assets.suites.loaders import load_all_items

    return len(load_all_items(spec, data_root))


def _table(rows: list[dict[str, str]]) -> str:
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def cmd_suites_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Every suite: name, kind, loader, metric, version, items per profile (loading its data), source file."""
    out = out or sys.stdout
    try:
        specs = suite_specs_from(getattr(args, "suites_dir", None))
    except USER_ERRORS as exc:
        print(f"evalgate: error: {one_line(exc)}", file=sys.stderr)
        return 2
    builtin = {path.resolve() for path in builtin_spec_paths()}
    data_root = _data_root(args)
    count = not getattr(args, "no_count", False)
    rows: list[dict[str, str]] = []
    problems: list[str] = []
    for name, spec in specs.items():
        profiles = {p: "-" for p in spec.profiles}
        if count:
            try:
                total = _total(spec, data_root)
                profiles = {p: _count(spec, p, total) for p in spec.profiles}
            except USER_ERRORS as exc:
                profiles = {p: "?" for p in spec.profiles}
                problems.append(f"{name}: {one_line(exc)}")
        source = spec.source
        if source is None:
            origin = "(in code)"
        elif source.resolve() in builtin:
            origin = f"built-in ({source.name})"
        else:
            origin = str(source)
        rows.append(
            {
                "suite": name,
                "kind": spec.kind,
                "loader": spec.loader,
                "metric": spec.metric,
                "version": str(spec.version),
                "items": ", ".join(f"{p} {n}" for p, n in profiles.items()),
                "source": origin,
            }
        )
    print(_table(rows), file=out)
    directory = resolve_suites_dir(getattr(args, "suites_dir", None))
    print(
        f"\nuser suites: {directory if directory else f'none (set --suites-dir or ${SUITES_DIR_ENV})'}",
        file=out,
    )
    for problem in problems:
        print(f"evalgate: error: {problem}", file=sys.stderr)
    return 2 if problems else 0


def _shown(text: str) -> str:
    if len(text) <= SHOWN_CHARS:
        return text
    half = SHOWN_CHARS // 2
    return f"{text[:half]}\n[… {len(text) - SHOWN_CHARS} characters …]\n{text[-half:]}"


def render_example(item: Item) -> str:
    """One item as the model sees it, for people."""
    if isinstance(item, LikelihoodItem):
        choices = "\n".join(
            f"  {'*' if i == item.gold else ' '} [{i}] {continuation!r}"
            for i, continuation in enumerate(item.continuations)
        )
        return (
            f"item {item.item_id} (likelihood: the most likely continuation is the answer; * = gold)\n"
            f"context:\n{textwrap.indent(_shown(item.context), '  | ', lambda _line: True)}\n"
            f"continuations:\n{choices}"
        )
    messages = "\n".join(
        f"  [{role}]\n{textwrap.indent(_shown(content), '  | ', lambda _line: True)}"
        for role, content in item.messages
    )
    return f"item {item.item_id} (generation)\nmessages:\n{messages}\ngold: {item.gold!r}"


def _check_golds(spec: SuiteSpec, items: list[Item]) -> None:
    from eval_assets.kinds import get_scorer

    entry = get_scorer(spec.metric)
    if entry.check_gold is None:
        return
    params = spec.scorer_params()
    for item in items:
        if isinstance(item, GenerationItem):
            try:
                entry.check_gold(params, item.gold)
            except ValueError as exc:
                raise ValueError(f"{spec.where}: item {item.item_id}: {exc}") from None


def check_spec(path: Path, data_root: Path) -> tuple[SuiteSpec, list[Item]]:
    """The spec at ``path`` validated as ``suite_specs_from`` would (a built-in's name needs
    ``replaces_builtin``), and all its items loaded from its verified data.

    Raises:
        SuiteSpecError, DataPackageError, ValueError: naming the file and the field.
    """
    from eval_assets.suites.loaders import load_all_items

    spec = load_suite_spec(path)
    builtin = {p.stem for p in builtin_spec_paths()}
    if path.resolve() not in {p.resolve() for p in builtin_spec_paths()}:
        if spec.name in builtin and not spec.replaces_builtin:
            raise SuiteSpecError(
                f"{path}: field `name`: {spec.name!r} is a built-in suite; rename yours, or set "
                "`replaces_builtin: true` to evaluate this spec instead of the built-in one"
            )
        if spec.replaces_builtin and spec.name not in builtin:
            raise SuiteSpecError(
                f"{path}: field `replaces_builtin`: there is no built-in suite {spec.name!r}"
            )
    items = load_all_items(spec, data_root)
    _check_golds(spec, items)
    return spec, items


def cmd_suites_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Validate one spec and its data; print the item count per profile and one rendered example."""
    from eval_assets.suites.loaders import select

    out = out or sys.stdout
    path = Path(args.path)
    try:
        spec, items = check_spec(path, _data_root(args))
        first_profile = "smoke" if "smoke" in spec.profiles else next(iter(spec.profiles))
        example = select(items, spec.profile(first_profile))[0]
    except USER_ERRORS as exc:
        print(f"evalgate: error: {one_line(exc)}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{p} {_count(spec, p, len(items))}" for p in spec.profiles)
    print(
        f"{path}: ok: suite {spec.name} v{spec.version} ({spec.kind}, loader {spec.loader}, metric {spec.metric})",
        file=out,
    )
    print(f"items: {len(items)} in all; per profile: {counts}", file=out)
    print(f"\nfirst {first_profile} item, rendered:\n{render_example(example)}", file=out)
    return 0


def add_suites_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``suites list`` and ``suites check PATH`` to the ``evalgate`` parser's subcommands."""
    suites = sub.add_parser("suites", help="list the suites, or check a suite spec and its data")
    # SUPPRESS: an unset option leaves the namespace alone, so `evalgate --suites-dir X suites list` keeps X
    suites.add_argument(
        "--suites-dir",
        default=argparse.SUPPRESS,
        help=f"a directory of your suite specs (default ${SUITES_DIR_ENV}); built-in suites always load",
    )
    suites.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="the data packages (default $EVALGATE_DATA_DIR or ~/.cache/evalgate/data)",
    )
    inner = suites.add_subparsers(dest="suites_command", required=True)
    listing = inner.add_parser(
        "list", help="name, kind, version, items per profile and source of every suite"
    )
    listing.add_argument("--no-count", action="store_true", help="do not load the data to count items")
    listing.set_defaults(func=cmd_suites_list)
    check = inner.add_parser("check", help="validate a suite spec and its data; show one rendered item")
    check.add_argument("path", help="the spec file (YAML)")
    check.set_defaults(func=cmd_suites_check)


def main(argv: list[str] | None = None) -> int:
    """``python -m eval_assets.cli_suites list|check PATH`` (the same commands without the rest of the CLI)."""
    parser = argparse.ArgumentParser(prog="evalgate")
    add_suites_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["suites", *(argv if argv is not None else sys.argv[1:])])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
