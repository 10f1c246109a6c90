"""The ``dashboard`` asset: this checkpoint's HTML report (and the index across checkpoints) under
``<home>/dashboard/``, linked from the materialization's metadata. A thin asset over :func:`write_dashboard`.

It depends on the scores and on ``human_eval_sample``, not on the comparisons: a blocking gate check that
fails skips everything downstream of its comparison in that run, and a blocked checkpoint is the one whose
report people need most. In a run of the whole partition it renders after the comparisons and their checks
(one topological level later), so their decisions are on the page; ``evalgate report --html DIR`` re-renders
every page from the tables at any time (after a later promotion, for instance).
"""

from collections.abc import Sequence

import dagster as dg

from eval_assets.dashboard._render import write_dashboard
from eval_assets.defs.automation import evaluate_when_new_or_changed
from eval_assets.defs.partitions import checkpoints
from resources.checkpoint_registry import CheckpointRegistry
from resources.evalgate import EvalgateHome

DASHBOARD_VERSION = "1"


def registration_order(registry: CheckpointRegistry) -> list[str]:
    """Registered checkpoints, oldest first (the x axis of the trend charts)."""
    manifests = [registry.get(name) for name in registry.names()]
    return [m.name for m in sorted(manifests, key=lambda m: (m.registered_at, m.name))]


def build_dashboard_asset(suites: Sequence[str]) -> dg.AssetsDefinition:
    deps = [dg.AssetKey(["scores", s]) for s in sorted(suites)] + [dg.AssetKey("human_eval_sample")]

    @dg.asset(
        deps=deps,
        partitions_def=checkpoints,
        code_version=DASHBOARD_VERSION,
        automation_condition=evaluate_when_new_or_changed(),
        group_name="human_eval",
        kinds={"html"},
        description="This checkpoint's static HTML report (scores with CIs, the comparison with production, "
        "gate decisions and overrides, judge diagnostics, red-team rates, cost, human evaluation) and the "
        "index with trend charts, under <home>/dashboard/ (offline: plots are inline SVG).",
    )
    def dashboard(context: dg.AssetExecutionContext, evalgate: EvalgateHome) -> dg.MaterializeResult:
        checkpoint = context.partition_key
        layout = evalgate.layout
        order = registration_order(evalgate.registry())
        if checkpoint not in order:
            order.append(checkpoint)
        written = write_dashboard(evalgate.tables(), layout.root / "dashboard", order)
        page = written.pages[checkpoint]
        decisions = evalgate.results().read("gate_decisions", checkpoint=checkpoint)
        return dg.MaterializeResult(
            metadata={
                "gate_decisions_shown": decisions.height,
                "report": dg.MetadataValue.path(str(page)),
                "report_url": dg.MetadataValue.url(page.as_uri()),
                "index": dg.MetadataValue.path(str(written.index)),
            }
        )

    return dashboard
