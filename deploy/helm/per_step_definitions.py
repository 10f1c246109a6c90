"""evalgate's definitions with one Kubernetes pod per step: dagster-k8s's ``k8s_job_executor`` in place of
the in-process executor, everything else (assets, checks, sensors, resources) exactly as
``eval_assets.definitions``. Serve this file instead of the module to get step pods (deploy/README.md):

    dagsterApiGrpcArgs: ["-f", "/opt/evalgate/src/deploy/helm/per_step_definitions.py", "-a", "defs"]

Each step pod starts from the run launcher's settings (image, secrets, volumes, resources, security context);
op tags ``dagster-k8s/config`` or ``per_step_k8s_config`` refine them. Step outputs travel through the
instance's local artifact storage, which deploy/dagster.k8s.yaml and the Helm values put on the shared
``evalgate-home`` volume, so that a step pod reads what another wrote.
"""

from __future__ import annotations

import dagster as dg
from dagster_k8s import k8s_job_executor

import eval_assets.definitions as in_process

#: At most this many step pods of one run at a time (each suite's predictions load the model once).
MAX_CONCURRENT_STEP_PODS = 2


@dg.definitions
def defs() -> dg.Definitions:
    """Built when the code server loads this file, from the same configuration as ``eval_assets.definitions``."""
    base = in_process.defs()
    return dg.Definitions(
        assets=base.assets,
        asset_checks=base.asset_checks,
        schedules=base.schedules,
        sensors=base.sensors,
        jobs=base.jobs,
        resources=base.resources,
        loggers=base.loggers,
        metadata=base.metadata,
        executor=k8s_job_executor.configured({"max_concurrent": MAX_CONCURRENT_STEP_PODS}),
    )
