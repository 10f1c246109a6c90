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

_base = in_process.defs

defs = dg.Definitions(
    assets=_base.assets,
    asset_checks=_base.asset_checks,
    schedules=_base.schedules,
    sensors=_base.sensors,
    jobs=_base.jobs,
    resources=_base.resources,
    loggers=_base.loggers,
    metadata=_base.metadata,
    executor=k8s_job_executor.configured({"max_concurrent": MAX_CONCURRENT_STEP_PODS}),
)
