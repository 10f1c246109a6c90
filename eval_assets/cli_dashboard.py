"""``evalgate report --html DIR``: the static HTML dashboard (a page per checkpoint, an index with trend
charts) written beside the text report. ``cli.py`` adds the option with one line: ``add_html_option(report)``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_html_option(report: argparse.ArgumentParser) -> None:
    """Add ``--html DIR`` to the ``report`` parser: after the text report, write the dashboard into DIR."""
    report.add_argument(
        "--html",
        metavar="DIR",
        help="also write the HTML dashboard (index.html and a page per checkpoint) to DIR",
    )
    text_report: Callable[[argparse.Namespace], int] = report.get_default("func")

    def report_with_html(args: argparse.Namespace) -> int:
        code = text_report(args)
        if getattr(args, "html", None):
            written = write_html(args, Path(args.html).expanduser().resolve())
            if written is not None:
                print(f"dashboard: {written} ({len(checkpoint_names(args))} checkpoints)")
        return code

    report.set_defaults(func=report_with_html)


def checkpoint_names(args: argparse.Namespace) -> list[str]:
    """The named checkpoints (default: every registered one), oldest registration first."""
    from eval_assets.cli import _layout
    from eval_assets.dashboard.assets import registration_order
    from resources.checkpoint_registry import CheckpointRegistry

    order = registration_order(CheckpointRegistry(_layout(args).registry))
    names = list(getattr(args, "names", None) or order)
    return sorted(names, key=lambda n: order.index(n) if n in order else len(order))


def write_html(args: argparse.Namespace, out: Path) -> Path | None:
    from eval_assets.cli import _home_resource
    from eval_assets.dashboard import write_dashboard

    names = checkpoint_names(args)
    if not names:
        return None
    return write_dashboard(_home_resource(args).tables(), out, names).index
