"""The results table people read: suite, score, CI, delta vs production, gate verdict and its reason."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from resources.production_ledger import ProductionHead
from resources.results_store import ResultsStore

VERDICT_LABELS = {
    "pass": "PASS",
    "fail": "BLOCK",
    "inconclusive": "TOO SMALL",
    "no_production": "-",
    "is_production": "production",
}
#: Rows of gate_decisions that are not a rule's verdict on a suite.
NOT_VERDICTS = ("promotion", "production_move")


def latest_decisions(results: ResultsStore, checkpoint: str) -> pl.DataFrame:
    decisions = results.read("gate_decisions", checkpoint=checkpoint)
    if decisions.height == 0:
        return decisions
    return decisions.sort("decided_at").group_by(["suite", "rule"], maintain_order=True).last()


def checkpoint_rows(results: ResultsStore, checkpoint: str) -> list[dict[str, str]]:
    """The table's rows for one checkpoint: none when it has no scores yet."""
    scores = results.read("scores", checkpoint=checkpoint)
    if scores.height == 0:
        return []
    comparisons = results.read("comparisons", checkpoint=checkpoint)
    decisions = latest_decisions(results, checkpoint)
    rows = []
    for score in scores.sort("suite").iter_rows(named=True):
        suite = score["suite"]
        comp = comparisons.filter(pl.col("suite") == suite).to_dicts() if comparisons.height else []
        rules = (
            decisions.filter((pl.col("suite") == suite) & ~pl.col("rule").is_in(NOT_VERDICTS)).to_dicts()
            if decisions.height
            else []
        )
        delta = "-"
        if comp and comp[0]["production"] and not comp[0]["is_production"]:
            c = comp[0]
            delta = f"{c['difference']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] vs {c['production']}"
        verdict = _verdict(rules)
        rows.append(
            {
                "checkpoint": checkpoint,
                "suite": suite,
                "n": str(score["n"]),
                "score": f"{score['score']:.3f}",
                "95% CI (method)": f"[{score['ci_low']:.3f}, {score['ci_high']:.3f}] {score.get('ci_method') or ''}".strip(),
                "delta vs production [CI]": delta,
                "gate": verdict,
            }
        )
    promotion = decisions.filter(pl.col("rule") == "promotion").to_dicts() if decisions.height else []
    if promotion:
        rows.append(
            {
                "checkpoint": checkpoint,
                "suite": "(promotion)",
                "n": "",
                "score": "",
                "95% CI (method)": "",
                "delta vs production [CI]": "",
                "gate": promotion[0]["outcome"].upper(),
            }
        )
    return rows


def _verdict(rules: list[dict[str, object]]) -> str:
    """The suite's gate column: a blocking verdict of any rule first, then the regression rule's outcome."""
    if not rules:
        return "not checked"
    blocking = [r for r in rules if r["blocking"]]
    if blocking:
        worst = blocking[0]
        label = "BLOCK (too small)" if worst["outcome"] == "inconclusive" else "BLOCK"
        return label if worst["rule"] == "no_regression_vs_production" else f"{label} ({worst['rule']})"
    main = [r for r in rules if r["rule"] == "no_regression_vs_production"] or rules
    outcome = str(main[0]["outcome"])
    return VERDICT_LABELS.get(outcome, outcome)


def production_line(head: ProductionHead | None) -> str:
    if head is None:
        return "production: none yet (set the first baseline with `evalgate promote --baseline NAME`)"
    return (
        f"production: {head.checkpoint} ({head.model_hash[:19]}…, move {head.sequence}, {head.authority_kind}"
        f"{'' if head.predecessor is None else ', after ' + head.predecessor})"
    )


def policy_line(version: int, policy_hash: str) -> str:
    return f"policy: version {version} ({policy_hash[:19]}…)"


def run_decisions(results: ResultsStore, checkpoint: str, run_id: str) -> list[str]:
    """What one run decided, as decisions: ``BLOCKED`` with each blocking rule's reason, else the promotion's
    outcome. Empty when the run recorded no decision (it failed before the gate)."""
    decisions = results.read("gate_decisions", checkpoint=checkpoint)
    if decisions.height == 0:
        return []
    mine = (  # the last word of each rule in the run (a growing gate records one decision per look)
        decisions.filter(pl.col("run_id") == run_id)
        .sort("decided_at")
        .group_by(["suite", "rule"], maintain_order=True)
        .last()
    )
    blocked = mine.filter(
        pl.col("blocking")
        & ~pl.col("rule").is_in(NOT_VERDICTS)
        & pl.col("outcome").is_in(["fail", "inconclusive"])
    )
    lines = [
        f"BLOCKED {checkpoint}: {row['suite']} {row['rule']}: {row['outcome']}: {row['reason']}"
        for row in blocked.iter_rows(named=True)
    ]
    for row in mine.filter(pl.col("rule") == "promotion").iter_rows(named=True):
        label = {"promoted": "PROMOTED", "blocked": "BLOCKED", "already_production": "UNCHANGED"}.get(
            row["outcome"], "NOT PROMOTED"
        )
        if not (label == "BLOCKED" and lines):
            lines.append(f"{label} {checkpoint}: {row['reason']}")
    return lines


def reasons(results: ResultsStore, checkpoint: str) -> list[str]:
    decisions = latest_decisions(results, checkpoint)
    if decisions.height == 0:
        return []
    lines = []
    for row in decisions.sort(["rule", "suite"]).iter_rows(named=True):
        if row["outcome"] in ("pass", "no_production", "is_production", "already_production"):
            continue
        if row["rule"] == "production_move":
            continue
        where = "promotion" if row["rule"] == "promotion" else f"{row['suite']} {row['rule']}"
        lines.append(f"{checkpoint} · {where}: {row['outcome']}: {row['reason']}")
    return lines


def format_table(rows: Sequence[dict[str, str]]) -> str:
    if not rows:
        return "(no results)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    line = "  ".join(c.ljust(widths[c]) for c in columns)
    rule = "  ".join("-" * widths[c] for c in columns)
    body = ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join([line, rule, *body])


def render_report(
    results: ResultsStore,
    checkpoints: Sequence[str],
    head: ProductionHead | None = None,
    *,
    policy: tuple[int, str] | None = None,
) -> str:
    """Production (and the gate policy's version and hash, when given), the table, the reasons for every
    verdict that is not a plain pass, and the checkpoints that have no results yet."""
    rows: list[dict[str, str]] = []
    waiting = []
    for name in checkpoints:
        mine = checkpoint_rows(results, name)
        rows.extend(mine)
        if not mine:
            waiting.append(name)
    why = [line for name in checkpoints for line in reasons(results, name)]
    header = [production_line(head)] + ([policy_line(*policy)] if policy else [])
    text = "\n".join(header) + "\n\n" + format_table(rows)
    if why:
        text += "\n\nWhy:\n" + "\n".join(f"  - {line}" for line in why)
    if waiting and rows:
        text += "\n\n" + not_evaluated_line(waiting)
    return text


def not_evaluated_line(names: Sequence[str]) -> str:
    return f"no results yet for {', '.join(names)}: evaluate with `evalgate evaluate {' '.join(names)}`"
