"""Declarative automation on the real definitions: a checkpoint partition must be evaluated whether it was
registered before or after the automation sensor's first evaluation.

The first case is the first-use flow: ``evalgate register CKPT`` (or an inbox file the sensor picks up in the
daemon's first seconds), then the daemon starts. Evaluated in-process with ``dg.evaluate_automation_conditions``,
exactly as the daemon's ``evaluate_checkpoints`` sensor would (no model is loaded: nothing is materialized).
"""

import dagster as dg
import pytest
from evalgate_testing import tiny_specs

from eval_assets.definitions import build_definitions
from resources.evalgate import EvalgateHome

pytestmark = pytest.mark.slow


@pytest.fixture
def defs(tmp_path) -> dg.Definitions:  # type: ignore[no-untyped-def]
    return build_definitions(
        specs=tiny_specs(arc=6, gsm8k=1, mmlu=0), evalgate=EvalgateHome(home=str(tmp_path))
    )


def _requested(result, key: str) -> set[str | None]:  # type: ignore[no-untyped-def]
    """The partitions of asset ``key`` (``a/b``) that one evaluation requested."""
    return set(result.get_requested_partitions(dg.AssetKey.from_user_string(key)))


def test_partition_added_after_the_first_evaluation_is_requested(defs: dg.Definitions) -> None:
    instance = dg.DagsterInstance.ephemeral()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0
    instance.add_dynamic_partitions("checkpoints", ["base"])
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert _requested(second, "checkpoint_manifest") == {"base"}
    assert _requested(second, "predictions/arc_easy") == {"base"}, "the whole partition in one run"


def test_partition_registered_before_the_first_evaluation_is_requested(defs: dg.Definitions) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("checkpoints", ["base"])  # `evalgate register` before the daemon starts
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    later = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    requested = _requested(first, "checkpoint_manifest") | _requested(later, "checkpoint_manifest")
    assert requested == {"base"}, "the checkpoint registered before the daemon started is never evaluated"
