"""The thin root: merges the per-domain definitions. ``dagster dev``, the daemon and the code server load
:func:`defs` (workspace.yaml, ``dagster api grpc -m eval_assets.definitions``); it builds everything from the
effective configuration (:mod:`eval_assets.config`) when Dagster loads the code location, never at import.
``evalgate evaluate`` builds the same definitions from the same configuration (plus its flags)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg
from pydantic import BaseModel, ConfigDict

from eval_assets.config import EffectiveConfig, load_config
from eval_assets.config_resources import CONFIG_DIGEST_TAG, config_digest, masked, resources_from_config
from eval_assets.defs.alerts import build_alerts_sensor
from eval_assets.defs.checkpoint_assets import checkpoint_manifest
from eval_assets.defs.comparison_assets import build_comparison_asset, production_asset
from eval_assets.defs.gate_checks import build_rule_check
from eval_assets.defs.judge_validation import build_judge_validation
from eval_assets.defs.promotion import build_promotion_asset, expected_checks
from eval_assets.defs.refusal_validation import build_refusal_validation_check, refusal_validation
from eval_assets.defs.sensors import checkpoint_inbox
from eval_assets.defs.suite_assets import build_suite_assets
from eval_assets.gate import GatePolicy, load_gate_policy, policy_path_from_env, registered_rules
from eval_assets.kinds import get_kind
from eval_assets.suites.spec import SuiteSpec, SuiteSpecError, suite_specs_from
from resources.evalgate import CodeSandbox, EvalgateHome, ModelRunner, SuiteSettings
from resources.judge import JudgeResource
from resources.refusal_classifier import RefusalClassifierResource
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
    run_tags: Mapping[str, str] | None = None,
    metadata: Mapping[str, dg.RawMetadataValue] | None = None,
    resources: Mapping[str, dg.ConfigurableResource] | None = None,
) -> dg.Definitions:
    """The whole graph for ``specs`` (default: the built-in suites plus ``suite_settings.suites_dir``); each
    suite's assets are built for its profile (``suite_settings.profile_for``). ``run_tags`` go on every run
    automation launches; ``resources`` are further resources by key (a key given here replaces the default)."""
    suite_settings = suite_settings or SuiteSettings()
    specs = specs if specs is not None else suite_specs_from(suite_settings.suites_dir)
    policy = policy or load_gate_policy(policy_path_from_env())
    suites = sorted(specs)
    assets: list[dg.AssetsDefinition] = [checkpoint_manifest]
    for name in suites:
        profile = suite_settings.profile_for(name)
        assets.extend(build_suite_assets(specs[name], policy, profile=profile))
        if not get_kind(
            specs[name].kind
        ).head_to_head:  # a head-to-head score already compares with production
            assets.append(build_comparison_asset(specs[name], policy, profile=profile))
    code_versions = {
        key: version for a in assets for key, version in a.code_versions_by_key.items() if version
    }
    # one list of (rule, suite) checks: the definitions carry them, and promotion requires exactly them
    expected = expected_checks({name: specs[name].kind for name in suites}, code_versions, registered_rules())
    checks = [build_rule_check(e.rule, e.suite, policy, e.code_version) for e in expected]
    if any(
        get_kind(specs[name].kind).head_to_head for name in suites
    ):  # the judge's validation against humans
        validation, validation_check = build_judge_validation(policy)
        assets.append(validation)
        checks.append(validation_check)
    if any(specs[name].kind.startswith("refusal_") for name in suites):  # the refusal classifier vs humans
        assets.append(refusal_validation)
        checks.append(build_refusal_validation_check(policy))
    assets.append(build_promotion_asset(expected, policy))
    from eval_assets.human_eval.assets import build_human_eval_assets  # sample for people, dashboard

    assets.extend(build_human_eval_assets(specs, {name: suite_settings.profile_for(name) for name in suites}))
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
                run_tags=dict(run_tags) if run_tags else None,
            ),
            # running by default only where the Slack token's variable is set
            build_alerts_sensor(default_status=_alerts_status(slack)),
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
            "judge": JudgeResource(),  # the embedded judge unless configured (a `judge` section, `resources`)
            "refusal_classifier": RefusalClassifierResource(),  # embedded unless configured (`resources`)
            **(resources or {}),
        },
        executor=dg.in_process_executor,
        metadata=dict(metadata) if metadata else None,
    )


def _alerts_status(slack: SlackAlerts | None) -> dg.DefaultSensorStatus | None:
    """The alerts sensor runs by default where the configured token's variable is set (else: stopped)."""
    token = slack.token if slack is not None else None
    if not isinstance(token, dg.EnvVar):
        return None  # the sensor's own default ($SLACK_BOT_TOKEN)
    running = bool(os.environ.get(token.env_var_name))
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


class CoreResources(BaseModel):
    """The resources :func:`build_definitions` takes by keyword, typed."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="ignore")

    evalgate: EvalgateHome
    model_runner: ModelRunner
    suite_settings: SuiteSettings
    code_sandbox: CodeSandbox
    slack: SlackAlerts


def check_profiles(effective: EffectiveConfig, specs: Mapping[str, SuiteSpec]) -> None:
    """Every configured profile names a suite that exists and a profile that suite has."""
    suites = effective.config.suites
    for suite, profile in suites.profiles.items():
        if suite not in specs:
            raise ValueError(
                f"evalgate config: {effective.sources['suites.profiles']}: field `suites.profiles.{suite}`: no "
                f"suite {suite!r} (suites: {', '.join(sorted(specs))})"
            )
        _check_profile(effective, "suites.profiles", specs[suite], profile)
    for spec in specs.values():
        if spec.name not in suites.profiles:
            _check_profile(effective, "suites.profile", spec, suites.profile)


def _check_profile(effective: EffectiveConfig, path: str, spec: SuiteSpec, profile: str) -> None:
    try:
        spec.profile(profile)
    except SuiteSpecError as exc:
        raise ValueError(f"evalgate config: {effective.sources[path]}: field `{path}`: {exc}") from None


def definitions_from_config(
    effective: EffectiveConfig,
    *,
    specs: dict[str, SuiteSpec] | None = None,
    policy: GatePolicy | None = None,
) -> dg.Definitions:
    """The definitions every entry point uses: resources, suites, profiles and policy from ``effective``.
    Automation's runs carry the configuration's digest (tag ``evalgate/config_digest``); the code location's
    metadata holds the configuration itself, secrets as the names of their variables."""
    resources = resources_from_config(effective)
    core = CoreResources.model_validate(resources)
    # the resources configured in their own sections (judge, refusal classifier) replace any default
    extra = {key: value for key, value in resources.items() if key not in CoreResources.model_fields}
    specs = specs if specs is not None else suite_specs_from(core.suite_settings.suites_dir)
    check_profiles(effective, specs)
    return build_definitions(
        specs=specs,
        policy=policy or load_gate_policy(effective.path("policy")),
        evalgate=core.evalgate,
        model_runner=core.model_runner,
        suite_settings=core.suite_settings,
        code_sandbox=core.code_sandbox,
        slack=core.slack,
        run_tags={CONFIG_DIGEST_TAG: config_digest(effective)},
        metadata={"evalgate/config": dg.MetadataValue.json(masked(effective))},
        resources=extra,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What Dagster loads: the configuration read now ($EVALGATE_CONFIG or <home>/evalgate.yaml, then the
    EVALGATE_* environment)."""
    return definitions_from_config(load_config())
