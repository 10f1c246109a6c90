"""Per-problem pass counts and the pass@k hook (the estimator and its CIs come from the statistics core)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from eval_assets.code._execute import CodeExecution

#: ``(n, c, k) -> pass@k`` of one problem, e.g. ``eval_assets.stats.pass_at_k``.
PassAtK = Callable[[int, int, int], float]


def pass_counts(executions: Iterable[CodeExecution]) -> dict[str, tuple[int, int]]:
    """``task_id -> (n samples, c passed)``, in first-seen order."""
    counts: dict[str, list[int]] = {}
    for execution in executions:
        n_c = counts.setdefault(execution.task_id, [0, 0])
        n_c[0] += 1
        n_c[1] += int(execution.passed)
    return {task: (n, c) for task, (n, c) in counts.items()}


def pass_at_k_per_problem(
    counts: Mapping[str, tuple[int, int]], k: int, estimator: PassAtK
) -> dict[str, float]:
    """pass@k of every problem with ``estimator``.

    Raises:
        ValueError: a problem has fewer than ``k`` samples (pass@k is undefined there; do not drop it silently).
    """
    short = {task: n for task, (n, _) in counts.items() if n < k}
    if short:
        raise ValueError(
            f"pass@{k} needs at least {k} samples per problem; {len(short)} have fewer: {dict(list(short.items())[:5])}"
        )
    return {task: estimator(n, c, k) for task, (n, c) in counts.items()}


def status_counts(executions: Iterable[CodeExecution]) -> dict[str, int]:
    """How many executions ended in each status (for asset metadata)."""
    return dict(Counter(execution.outcome.status.value for execution in executions))
