"""Automation conditions. ``eager()`` re-runs downstream after any upstream materialization even when nothing
changed (measured: docs/dagster-notes.md "Automation"); these conditions react only to new partitions, changed
data versions and changed code versions."""

import dagster as dg

AC = dg.AutomationCondition


def upstream_changed_outside_this_run() -> dg.AutomationCondition:
    """A dependency's data version changed, in a run that did not also target this asset. An upstream updated
    by a run that targets this asset too is that run's business. Without this, a daemon tick whose evaluation
    overlapped the asset's own materialization re-requested it: the tick reads materializations from a
    snapshot taken when it starts but run progress live, so the asset looked neither materialized nor in
    progress while its upstream (same run) had changed (measured: docs/dagster-notes.md "Automation").
    ``eager()``'s ``any_deps_updated()`` excludes the same runs."""
    return (AC.data_version_changed() & ~AC.executed_with_root_target()).with_label(
        "data_version_changed_outside_this_run"
    )


def evaluate_when_new_or_changed(
    also: dg.AutomationCondition | None = None, external: dg.AssetSelection | None = None
) -> dg.AutomationCondition:
    """Materialize a partition when it is new, when an upstream's data version changed (in a run that did not
    also target this asset) or is about to be requested, when this asset's code version changed, or when
    ``also`` holds; never while anything upstream is missing or running (``external`` deps, reported from
    outside any run, are not waited for)."""
    changed: dg.AutomationCondition = (
        AC.newly_missing()
        | AC.any_deps_match(upstream_changed_outside_this_run() | AC.will_be_requested())
        | AC.code_version_changed()
    )
    if also is not None:
        changed = changed | also
    # newly_missing() fires on the same tick as since_last_handled()'s initial-evaluation reset, and the reset
    # wins: a partition registered before the automation sensor's first evaluation would never be requested.
    first_tick = AC.missing() & AC.initial_evaluation()
    trigger = changed.since_last_handled() | first_tick
    deps_missing = AC.any_deps_match(AC.missing() & ~AC.will_be_requested())
    if external is not None:
        deps_missing = deps_missing.ignore(external)
    return (trigger & ~deps_missing & ~AC.any_deps_in_progress() & ~AC.in_progress()).with_label(
        "evaluate_when_new_or_changed"
    )


def gated() -> dg.AutomationCondition:
    """For everything downstream of the gate: also require every blocking check upstream to have passed.
    Blocking checks hold only within one run; this holds them across runs."""
    return (evaluate_when_new_or_changed() & AC.all_deps_blocking_checks_passed()).with_label("gated")
