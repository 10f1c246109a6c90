"""The static HTML dashboard: a page per checkpoint and an index with trend charts (``evalgate report --html``
and the ``dashboard`` asset)."""

from ._data import CheckpointView, checkpoint_view, judge_diagnostics, read_table, refusal_rates, trend_points
from ._render import Written, current_production, render_checkpoint, write_dashboard

__all__ = [
    "CheckpointView",
    "Written",
    "checkpoint_view",
    "current_production",
    "judge_diagnostics",
    "read_table",
    "refusal_rates",
    "render_checkpoint",
    "trend_points",
    "write_dashboard",
]
