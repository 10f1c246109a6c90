"""Reads from Dagster's event log that have no public API yet, isolated here (one place to update).

``get_asset_check_execution_history`` with a partition filter is the only way to read a partition's latest
check evaluation; ``PartitionKeyFilter`` lives in ``dagster._core.event_api`` in Dagster 1.13.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter


def latest_check_evaluation(instance: dg.DagsterInstance, key: dg.AssetCheckKey, partition: str) -> Any:
    """The ``AssetCheckEvaluation`` of the latest execution of ``key`` on ``partition``; None when there is
    none, or when the latest execution never evaluated (it errored, or is still running): an older
    evaluation must not stand in for it."""
    history = instance.event_log_storage.get_asset_check_execution_history(
        key, limit=1, partition_filter=PartitionKeyFilter(key=partition)
    )
    evaluation = history[0].evaluation if history else None
    return evaluation if isinstance(evaluation, dg.AssetCheckEvaluation) else None
