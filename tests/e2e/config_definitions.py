"""evalgate's definitions built the way the daemon builds them, from the effective configuration
(``$EVALGATE_CONFIG`` or ``<home>/evalgate.yaml``, then the ``EVALGATE_*`` environment), on tiny suites, plus
``config_probe``: an unpartitioned asset automation materializes once, recording what an automated run's
resources hold. Test-only (loaded by tests/e2e/test_config_daemon.py through a workspace file).

No ``from __future__ import annotations`` here: Dagster reads the asset's parameter annotations at runtime.
"""

import hashlib

import dagster as dg

from eval_assets.config import load_config
from eval_assets.definitions import definitions_from_config
from resources.evalgate import CodeSandbox, ModelRunner, SuiteSettings
from sandboxes import IsolationUnavailableError
from tests.evalgate_testing import tiny_policy, tiny_specs

SUITES = ("arc_easy", "gsm8k")


@dg.asset(automation_condition=dg.AutomationCondition.missing() & ~dg.AutomationCondition.in_progress())
def config_probe(
    context: dg.AssetExecutionContext,
    suite_settings: SuiteSettings,
    model_runner: ModelRunner,
    code_sandbox: CodeSandbox,
) -> dg.MaterializeResult:
    # a log line of the resource, as careless code would write: the resolved key must not show in it
    context.log.info(f"model runner: {model_runner!r}")
    try:
        with code_sandbox.pool():
            sandbox_error = ""
    except IsolationUnavailableError as exc:  # the Modal backend without credentials: its own error
        sandbox_error = str(exc)
    key = model_runner.openai_api_key or ""
    return dg.MaterializeResult(
        metadata={
            **{f"profile/{suite}": suite_settings.profile_for(suite) for suite in SUITES},
            "batch_size": model_runner.batch_size,
            "device": model_runner.device,
            "sandbox_backend": code_sandbox.backend,
            "modal_app_name": code_sandbox.modal_app_name,
            "sandbox_error": sandbox_error,
            # proves the run resolved the secret without recording it
            "openai_api_key_sha256": hashlib.sha256(key.encode()).hexdigest() if key else "",
        }
    )


@dg.definitions
def defs() -> dg.Definitions:
    base = definitions_from_config(load_config(), specs=tiny_specs(arc=2, gsm8k=1), policy=tiny_policy())
    return dg.Definitions.merge(base, dg.Definitions(assets=[config_probe]))
