"""Trend charts as inline SVG, drawn by matplotlib (Agg backend, no display, no network: the page works
offline). Only comparable points are joined: a suite's line breaks where its code version (suite spec,
template, scorer) changes, and each change is marked with a dashed line and the new version."""

from __future__ import annotations

import io
from collections.abc import Sequence

import polars as pl


def trend_svg(points: pl.DataFrame, suite: str, labels: Sequence[str]) -> str:
    """One suite's score with its CI band across checkpoints (``points``: rows of
    :func:`eval_assets.dashboard._data.trend_points` for this suite; ``labels``: checkpoint names by
    position)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    rows = points.filter(pl.col("suite") == suite).sort("position")
    with plt.rc_context({"svg.hashsalt": f"evalgate-{suite}", "svg.fonttype": "none", "font.size": 9}):
        fig, ax = plt.subplots(figsize=(6.4, 2.6), dpi=100)
        try:
            for segment in sorted(set(rows["segment"].to_list())):
                seg = rows.filter(pl.col("segment") == segment)
                x = seg["position"].to_list()
                ax.fill_between(
                    x, seg["ci_low"].to_list(), seg["ci_high"].to_list(), alpha=0.2, color=f"C{segment}"
                )
                version = str(seg["suite_code_version"][0])[:12]
                score = seg["score"].to_list()
                below = [s - lo for s, lo in zip(score, seg["ci_low"].to_list(), strict=True)]
                above = [hi - s for s, hi in zip(score, seg["ci_high"].to_list(), strict=True)]
                ax.errorbar(x, score, yerr=[below, above], marker="o", capsize=3, color=f"C{segment}",
                            label=f"version {version}")  # fmt: skip
                if segment > 0:
                    ax.axvline(x[0] - 0.5, color="0.4", linestyle="--", linewidth=1)
                    ax.annotate("version change", (x[0] - 0.5, 1.0), xycoords=("data", "axes fraction"),
                                fontsize=7, ha="left", va="top", color="0.3")  # fmt: skip
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(list(labels), rotation=20, ha="right")
            ax.set_xlim(-0.5, max(len(labels) - 0.5, 0.5))
            ax.set_ylabel(str(rows["metric"][0]) if "metric" in rows.columns and rows.height else "score")
            ax.set_title(f"{suite}: score and CI across checkpoints", fontsize=10)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7, loc="best")
            fig.tight_layout()
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", metadata={"Date": None})
        finally:
            plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
