"""The static HTML report: one page per checkpoint and an index with trend charts. Jinja2 with autoescape,
so model-written text in a reason or an answer never becomes markup; the only unescaped HTML is
matplotlib's own SVG."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import polars as pl

from eval_assets.dashboard._data import CheckpointView, Tables, checkpoint_view, read_table, trend_points
from eval_assets.dashboard._plots import trend_svg

TEMPLATES = Path(__file__).with_name("templates.html")


def _template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(TEMPLATES.read_text())


def current_production(tables: Tables) -> str | None:
    """The checkpoint of the last production move in ``gate_decisions`` (the history; the ledger verifies
    the chain when it moves production, the report only reads it)."""
    decisions = read_table(tables, "gate_decisions")
    if decisions.height == 0:
        return None
    moves = decisions.filter(pl.col("rule") == "production_move").sort("sequence")
    return str(moves["checkpoint"][-1]) if moves.height else None


def render_checkpoint(view: CheckpointView, production: str | None, generated: str) -> str:
    return str(_template().module.checkpoint_page(view, production, generated))  # type: ignore[attr-defined]


def _gate_summary(view: CheckpointView) -> str:
    if view.verdicts.height == 0:
        return "-"
    blocking = view.verdicts.filter(pl.col("blocking"))
    if blocking.height:
        return "blocked"
    if view.verdicts.filter(pl.col("outcome") == "inconclusive").height:
        return "inconclusive"
    return "pass"


@dataclass(frozen=True)
class Written:
    index: Path
    pages: dict[str, Path]


def write_dashboard(tables: Tables, out: Path, checkpoints: Sequence[str]) -> Written:
    """Write ``index.html`` and ``<checkpoint>.html`` for ``checkpoints`` (oldest first) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    production = current_production(tables)
    pages: dict[str, Path] = {}
    rows = []
    for checkpoint in checkpoints:
        view = checkpoint_view(tables, checkpoint)
        path = out / f"{checkpoint}.html"
        path.write_text(render_checkpoint(view, production, generated), encoding="utf-8")
        pages[checkpoint] = path
        promotion = view.promotion["outcome"][0] if view.promotion.height else "-"
        rows.append({"checkpoint": checkpoint, "file": path.name, "suites": view.scores.height,
                     "gate": _gate_summary(view), "promotion": promotion})  # fmt: skip
    points = trend_points(tables, list(checkpoints))
    charts = []
    if points.height:
        labels = list(checkpoints)
        charts = [
            (suite, trend_svg(points, suite, labels)) for suite in sorted(points["suite"].unique().to_list())
        ]
    index = out / "index.html"
    html = _template().module.index_page(rows, charts, production, generated, [])  # type: ignore[attr-defined]
    index.write_text(str(html), encoding="utf-8")
    return Written(index=index, pages=pages)
