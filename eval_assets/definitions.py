"""The thin root: merges the per-domain definitions. ``dagster dev`` loads this via workspace.yaml."""

from __future__ import annotations

import os

import dagster as dg

from eval_assets.defs.alerts import build_alerts_sensor
from eval_assets.defs.checkpoint_assets import checkpoint_manifest
from eval_assets.defs.comparison_assets import build_comparison_asset, production_asset
from eval_assets.defs.gate_checks import build_rule_check
from eval_assets.defs.promotion import build_promotion_asset, expected_checks
from eval_assets.defs.sensors import checkpoint_inbox
from eval_assets.defs.suite_assets import build_suite_assets
from eval_assets.gate import GatePolicy, load_gate_policy, policy_path_from_env, registered_rules
from eval_assets.suites.spec import SuiteSpec, suite_specs_from
from resources.evalgate import CodeSandbox, EvalgateHome, ModelRunner, SuiteSettings
from resources.slack import DEFAULT_CHANNEL, DEFAULT_UI_URL, SLACK_API, SlackAlerts


def build_definitions(
    *,
    specs: dict[str, SuiteSpec] | None = None,
    policy: GatePolicy | None = None,
    evalgate: EvalgateHome | None = None,
    model_runner: ModelRunner | None = None,
    suite_settings: SuiteSettings | None = None,
    code_sandbox: CodeSandbox | None = None,
    slack: SlackAlerts | None = None,
) -> dg.Definitions:
    suite_settings = suite_settings or SuiteSettings()
    specs = specs if specs is not None else suite_specs_from(suite_settings.suites_dir)
    policy = policy or load_gate_policy(policy_path_from_env())
    suites = sorted(specs)
    assets: list[dg.AssetsDefinition] = [checkpoint_manifest]
    for name in suites:
        assets.extend(build_suite_assets(specs[name], policy, profile=suite_settings.profile))
        assets.append(build_comparison_asset(specs[name], policy, profile=suite_settings.profile))
    code_versions = {
        key: version for a in assets for key, version in a.code_versions_by_key.items() if version
    }
    # one list of (rule, suite) checks: the definitions carry them, and promotion requires exactly them
    expected = expected_checks({name: specs[name].kind for name in suites}, code_versions, registered_rules())
    checks = [build_rule_check(e.rule, e.suite, policy, e.code_version) for e in expected]
    assets.append(build_promotion_asset(expected, policy))
    return dg.Definitions(
        assets=[*assets, production_asset],
        asset_checks=checks,
        sensors=[
            checkpoint_inbox,
            dg.AutomationConditionSensorDefinition(
                "evaluate_checkpoints",
                target=dg.AssetSelection.all(include_sources=False),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=5,
            ),
            build_alerts_sensor(),  # running by default only where $SLACK_BOT_TOKEN is set
        ],
        resources={
            "evalgate": evalgate or EvalgateHome(),
            "model_runner": model_runner or ModelRunner(),
            "suite_settings": suite_settings,
            "code_sandbox": code_sandbox or CodeSandbox(),
            "slack": slack
            or SlackAlerts(
                token=dg.EnvVar("SLACK_BOT_TOKEN"),
                channel=os.environ.get("EVALGATE_SLACK_CHANNEL", DEFAULT_CHANNEL),
                base_url=os.environ.get("EVALGATE_SLACK_BASE_URL", SLACK_API),
                dagster_ui_url=os.environ.get("EVALGATE_UI_URL", DEFAULT_UI_URL),
            ),
        },
        executor=dg.in_process_executor,
    )


defs = build_definitions()
