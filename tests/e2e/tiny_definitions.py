"""The real evalgate graph on tiny suites, for the end-to-end tests' daemon and webserver.

Test-only: the evalgate home comes from ``$EVALGATE_E2E_HOME``, read when Dagster loads the definitions (not at
import), and the suite sizes from ``$EVALGATE_E2E_LIMITS`` (JSON keyword arguments of ``tiny_specs``). The
workspace file that loads this sets ``working_directory`` to the repository root, so ``tests.evalgate_testing``
imports as a namespace package. (Putting ``tests/`` itself on the path would not do: ``tests/eval_assets/`` then
shadows the real ``eval_assets`` package as a namespace package.)
"""

import json
import os

import dagster as dg

from eval_assets.definitions import build_definitions
from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings
from tests.evalgate_testing import tiny_policy, tiny_specs

HOME_ENV = "EVALGATE_E2E_HOME"
LIMITS_ENV = "EVALGATE_E2E_LIMITS"
DEFAULT_LIMITS = {"arc": 60, "gsm8k": 1, "mmlu": 1}


def e2e_definitions(home: str, limits: dict[str, int]) -> dg.Definitions:
    return build_definitions(
        specs=tiny_specs(**limits),
        policy=tiny_policy(),
        evalgate=EvalgateHome(home=home),
        suite_settings=SuiteSettings(profile="smoke"),
        model_runner=ModelRunner(batch_size=8),
    )


@dg.definitions
def defs() -> dg.Definitions:
    home = os.environ.get(HOME_ENV)
    if not home:
        raise RuntimeError(f"set {HOME_ENV} to the evalgate home these test definitions use")
    limits = json.loads(os.environ[LIMITS_ENV]) if os.environ.get(LIMITS_ENV) else DEFAULT_LIMITS
    return e2e_definitions(home, limits)
