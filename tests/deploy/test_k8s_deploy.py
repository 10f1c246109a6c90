"""The Kubernetes deployment in ``deploy/``, checked without a cluster.

* ``deploy/dagster.k8s.yaml`` is a valid Dagster instance (PostgreSQL storage, ``K8sRunLauncher``,
  ``QueuedRunCoordinator``), and its run launcher config passes dagster-k8s's own schema.
* The Kubernetes Job that dagster-k8s's ``K8sRunLauncher`` builds for a real run of the evalgate definitions
  (the implicit asset job, one checkpoint partition, in a test instance) is captured at the Kubernetes API
  call and checked: image, ``dagster api execute_run`` for that run on the Postgres instance, secrets by name
  only, resources, service account, labels, ``backoffLimit`` 0 and the TTL.
* The Helm values render (the way the chart's ``dagsterYaml.runLauncher.k8s`` template does) into a run
  launcher that builds the same Job, and name the same image, secrets and limits as the instance config.
* The Dockerfile installs the sandbox's system packages, pins with constraints.txt and installs the data.

Only the Kubernetes API client is replaced (a mock batch API records the Job instead of sending it); the
launcher, its config processing and its Job construction are dagster-k8s's.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import sys
import tomllib
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any
from unittest import mock

import dagster as dg
import kubernetes
import pytest
import yaml
from dagster._config import process_config
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import LaunchRunContext
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_run_for_test, instance_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._grpc.types import ExecuteRunArgs, ExecuteStepArgs
from dagster._serdes import deserialize_value
from dagster_k8s import K8sRunLauncher
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S_YAML = DEPLOY / "dagster.k8s.yaml"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"

#: Secret name -> the variable it holds. Pods get them through envFrom/secretKeyRef, never as values.
SECRETS = {
    "evalgate-postgres": "PGPASSWORD",
    "evalgate-slack": "SLACK_BOT_TOKEN",
    "anthropic": "ANTHROPIC_API_KEY",
}
CONFIG_MAP = "evalgate-env"
PARTITION = "step-12000"
#: The Helm release these values are documented with (`helm upgrade --install evalgate dagster/dagster`).
RELEASE = "evalgate"
LOCATION = "evalgate"


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


@pytest.fixture(scope="module")
def k8s_instance() -> dict[str, Any]:
    return _load(K8S_YAML)


@pytest.fixture(scope="module")
def helm() -> dict[str, Any]:
    return _load(HELM_VALUES)


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig naming a cluster nobody contacts: loading it is all the launcher does before a launch."""
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "none", "user": {}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def secret_values(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every secret set in this process's environment to a value that must never reach a Job spec."""
    values = {var: f"do-not-inline-{var.lower()}-7f3a9c" for var in SECRETS.values()}
    values["DAGSTER_PG_PASSWORD"] = "do-not-inline-dagster-pg-7f3a9c"
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    return values


def _launcher_config(raw: Mapping[str, Any], kubeconfig: Path) -> dict[str, Any]:
    """The run launcher config processed by dagster-k8s's own schema (defaults filled in), pointed at a
    kubeconfig instead of the in-cluster service account (the only change)."""
    assert raw.get("load_incluster_config", True) is True, "pods load the in-cluster config"
    result = process_config(
        K8sRunLauncher.config_type(),
        {**raw, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)},
    )
    assert result.success, [error.message for error in result.errors or []]
    assert isinstance(result.value, dict)
    return result.value


def _helm_image(image: Mapping[str, Any]) -> str:
    return f"{image['repository']}:{image['tag']}"


def _names(sources: list[Mapping[str, str]]) -> list[str]:
    return [source["name"] for source in sources]


def render_helm_run_launcher(values: Mapping[str, Any], release: str = RELEASE) -> dict[str, Any]:
    """The ``run_launcher.config`` the Dagster chart writes into its instance ConfigMap for these values: a
    transcription of the chart's ``dagsterYaml.runLauncher.k8s`` template (helm/dagster/templates/helpers/
    instance/_run-launcher.tpl), for the keys these values use."""
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    cfg = launcher["config"]["k8sRunLauncher"]
    known = {
        "jobNamespace", "loadInclusterConfig", "imagePullPolicy", "envConfigMaps", "envSecrets", "envVars",
        "volumeMounts", "volumes", "labels", "resources", "securityContext", "failPodOnRunFailure", "runK8sConfig",
    }  # fmt: skip
    assert set(cfg) <= known, f"keys this rendering does not know: {sorted(set(cfg) - known)}"
    rendered: dict[str, Any] = {
        "load_incluster_config": cfg["loadInclusterConfig"],
        "job_namespace": cfg.get("jobNamespace") or release,
        "image_pull_policy": cfg["imagePullPolicy"],
        "service_account_name": values["global"]["serviceAccountName"],
        "dagster_home": values["global"]["dagsterHome"],
        "instance_config_map": f"{release}-dagster-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
        "env_config_maps": _names(cfg.get("envConfigMaps", [])),
        "env_secrets": _names(cfg.get("envSecrets", [])),
    }
    for helm_key, key in [
        ("envVars", "env_vars"), ("volumeMounts", "volume_mounts"), ("volumes", "volumes"), ("labels", "labels"),
        ("resources", "resources"), ("securityContext", "security_context"),
    ]:  # fmt: skip
        if cfg.get(helm_key):
            rendered[key] = cfg[helm_key]
    if cfg.get("failPodOnRunFailure"):
        rendered["fail_pod_on_run_failure"] = True
    sections = {
        "containerConfig": "container_config", "podSpecConfig": "pod_spec_config",
        "podTemplateSpecMetadata": "pod_template_spec_metadata", "jobSpecConfig": "job_spec_config",
        "jobMetadata": "job_metadata",
    }  # fmt: skip
    if cfg.get("runK8sConfig"):
        rendered["run_k8s_config"] = {sections[k]: v for k, v in cfg["runK8sConfig"].items() if v}
    return rendered


@contextmanager
def _evalgate_location(instance: dg.DagsterInstance, image: str) -> Iterator[Any]:
    """The evalgate code location (``eval_assets.definitions``, as the user code deployment serves it) loaded
    in this process, reporting ``image`` as its container image like the Helm user code deployment does."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable, module_name="eval_assets.definitions", working_directory=str(REPO)
        ),
        container_image=image,
        location_name=LOCATION,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as process_context:
        workspace = process_context.create_request_context()
        yield workspace, workspace.get_code_location(LOCATION)


def launch_and_capture(
    launcher_config: Mapping[str, Any], image: str, instance_ref: InstanceRef | None = None
) -> tuple[dict[str, Any], str, dg.DagsterRun]:
    """Launch one partition of the implicit asset job through a real ``K8sRunLauncher`` and return the Job it
    sent to the Kubernetes API (as the JSON the API receives), the namespace, and the run.

    ``instance_ref``: the instance the run pod is told to use (the deployment's, e.g. Postgres); the run
    itself is stored in a temporary instance here."""
    batch_api = mock.MagicMock()
    launcher = K8sRunLauncher(
        **launcher_config, k8s_client_batch_api=batch_api, k8s_client_core_api=mock.MagicMock()
    )
    with instance_for_test() as instance, _evalgate_location(instance, image) as (workspace, location):
        (repository,) = location.get_repositories().values()
        job = repository.get_full_job("__ASSET_JOB")
        instance.add_dynamic_partitions("checkpoints", [PARTITION])
        partitioned = {
            node.key
            for node in repository.asset_graph.asset_nodes
            if node.is_materializable and node.partitions_def is not None
        }
        assert dg.AssetKey(["predictions", "arc_easy"]) in partitioned
        run = create_run_for_test(
            instance,
            job_name=job.name,
            remote_job_origin=job.get_remote_origin(),
            job_code_origin=job.get_python_origin(),
            tags={"dagster/partition": PARTITION},
            asset_selection=frozenset(partitioned),
            asset_graph=repository.asset_graph,
        )
        launcher.register_instance(instance)
        if instance_ref is not None:
            with mock.patch.object(instance, "get_ref", return_value=instance_ref):
                launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=workspace))
        else:
            launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=workspace))
        stored = instance.get_run_by_id(run.run_id)
        assert stored is not None and stored.tags.get("dagster/image") == image
    assert batch_api.create_namespaced_job.call_count == 1
    call = batch_api.create_namespaced_job.call_args
    body = kubernetes.client.ApiClient().sanitize_for_serialization(call.kwargs["body"])
    return body, call.kwargs["namespace"], run


def _container(job: Mapping[str, Any]) -> dict[str, Any]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


def _k8s_instance_ref(tmp_path: Path) -> InstanceRef:
    (tmp_path / "dagster.yaml").write_text(K8S_YAML.read_text(encoding="utf-8"), encoding="utf-8")
    return InstanceRef.from_dir(str(tmp_path))


# -- the instance config ------------------------------------------------------------------------------------


def test_instance_config_is_a_valid_postgres_k8s_instance(
    k8s_instance: dict[str, Any], kubeconfig: Path, tmp_path: Path
) -> None:
    ref = _k8s_instance_ref(tmp_path)  # Dagster's own validation of the whole file; connects to nothing
    assert ref.storage_data is not None
    assert (ref.storage_data.module_name, ref.storage_data.class_name) == (
        "dagster_postgres",
        "DagsterPostgresStorage",
    )
    storage = yaml.safe_load(ref.storage_data.config_yaml)["postgres_db"]
    assert storage["scheme"] == "postgresql+psycopg2"
    # the connection comes from the environment when the pod loads it, as in deploy/dagster.postgres.yaml
    postgres_file = _load(DEPLOY / "dagster.postgres.yaml")
    assert storage == postgres_file["storage"]["postgres"]["postgres_db"]
    assert "password" not in storage
    assert ref.run_launcher_data is not None
    assert (ref.run_launcher_data.module_name, ref.run_launcher_data.class_name) == (
        "dagster_k8s",
        "K8sRunLauncher",
    )
    assert ref.run_coordinator_data is not None
    assert ref.run_coordinator_data.class_name == "QueuedRunCoordinator"
    settings: dict[str, Any] = dict(ref.settings)
    assert settings["concurrency"]["runs"]["max_concurrent_runs"] == 1
    assert settings["run_monitoring"]["enabled"] is True
    # asset values (the default IO manager) and compute logs on the volume every run pod mounts
    home_mount = next(
        m["mount_path"]
        for m in k8s_instance["run_launcher"]["config"]["volume_mounts"]
        if m["name"] == "evalgate-home"
    )
    artifacts = yaml.safe_load(ref.local_artifact_storage_data.config_yaml)["base_dir"]
    logs = yaml.safe_load(ref.compute_logs_data.config_yaml)["base_dir"]
    assert Path(artifacts).is_relative_to(home_mount) and Path(logs).is_relative_to(home_mount)
    # the launcher's own config passes dagster-k8s's schema
    config = _launcher_config(k8s_instance["run_launcher"]["config"], kubeconfig)
    assert config["env_secrets"] == list(SECRETS)


def test_instance_config_shares_the_run_queue_with_dagster_yaml(k8s_instance: dict[str, Any]) -> None:
    text = K8S_YAML.read_text(encoding="utf-8")
    marker = "# Everything below is the same as the repository's dagster.yaml"
    assert marker in text
    below = yaml.safe_load(text.split(marker, 1)[1].split("\n", 1)[1])
    default = _load(REPO / "dagster.yaml")
    assert below == {key: default[key] for key in below}
    assert set(below) == {"run_coordinator", "concurrency", "telemetry"}
    assert k8s_instance["concurrency"] == default["concurrency"]


# -- the Job dagster-k8s builds for a run ----------------------------------------------------------------------


def test_run_job_spec_from_the_instance_config(
    k8s_instance: dict[str, Any], kubeconfig: Path, secret_values: dict[str, str], tmp_path: Path
) -> None:
    raw = k8s_instance["run_launcher"]["config"]
    image = raw["job_image"]
    job, namespace, run = launch_and_capture(
        _launcher_config(raw, kubeconfig), image, _k8s_instance_ref(tmp_path)
    )
    container = _container(job)
    pod = job["spec"]["template"]["spec"]

    assert namespace == raw["job_namespace"] == "evalgate"
    assert container["image"] == image
    assert container["imagePullPolicy"] == "IfNotPresent"

    # the run worker: `dagster api execute_run <ExecuteRunArgs>` for exactly this run and job
    assert "command" not in container, "the image's CMD is replaced by args; there is no ENTRYPOINT"
    args = container["args"]
    assert args[:3] == ["dagster", "api", "execute_run"]
    execute = deserialize_value(args[3], ExecuteRunArgs)
    assert execute.run_id == run.run_id
    assert execute.job_origin.job_name == "__ASSET_JOB"
    pointer = execute.job_origin.repository_origin.code_pointer
    assert isinstance(pointer, ModuleCodePointer) and pointer.module == "eval_assets.definitions"
    assert execute.job_origin.repository_origin.container_image == image
    assert execute.set_exit_code_on_failure is True  # fail_pod_on_run_failure
    # ... on the deployment's Postgres instance, whose connection the pod reads from its own environment
    ref = execute.instance_ref
    assert ref is not None and ref.storage_data is not None
    assert ref.storage_data.class_name == "DagsterPostgresStorage"
    assert "env: EVALGATE_PG_HOST" in ref.storage_data.config_yaml

    # secrets only by name: envFrom the three Secrets and the settings ConfigMap, no value anywhere
    assert container["envFrom"] == [{"configMapRef": {"name": CONFIG_MAP}}] + [
        {"secretRef": {"name": name}} for name in SECRETS
    ]
    env = {entry["name"]: entry for entry in container["env"]}
    for var in [*SECRETS.values(), "DAGSTER_PG_PASSWORD"]:
        assert "value" not in env.get(var, {}), f"{var} is inlined in the Job"
    dumped = json.dumps(job)
    for var, value in secret_values.items():
        assert value not in dumped, f"the value of {var} reached the Job spec"
    assert env["DAGSTER_HOME"]["value"] == raw["dagster_home"]
    assert env["EVALGATE_HOME"]["value"] == "/var/lib/evalgate"
    assert env["DAGSTER_RUN_JOB_NAME"]["value"] == "__ASSET_JOB"

    # resources: Guaranteed (requests == limits), and the thread pools sized to the CPU limit
    resources = container["resources"]
    assert resources["requests"] == resources["limits"] == {"cpu": "4", "memory": "16Gi"}
    assert env["OMP_NUM_THREADS"]["value"] == resources["limits"]["cpu"] == env["MKL_NUM_THREADS"]["value"]

    # unprivileged pod (the local sandbox is not used here: deploy/README.md)
    security = container["securityContext"]
    assert security.get("privileged") is not True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}

    # the shared evalgate home and the models, from their PVCs
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["evalgate-home"]["mountPath"] == "/var/lib/evalgate"
    assert mounts["models"]["readOnly"] is True
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    assert claims == {"evalgate-home": "evalgate-home", "models": "evalgate-models"}

    # service account, labels with the run id (Job and pod), and Kubernetes never retries the pod
    assert pod["serviceAccountName"] == "evalgate"
    assert pod["restartPolicy"] == "Never"
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels["dagster/run-id"] == run.run_id
        assert labels["dagster/code-location"] == LOCATION
        assert labels["app.kubernetes.io/component"] == "run_worker"
        assert labels["app.kubernetes.io/part-of"] == "evalgate"
    assert job["metadata"]["name"] == f"dagster-run-{run.run_id}"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400


def test_helm_run_launcher_builds_the_same_job(
    k8s_instance: dict[str, Any], helm: dict[str, Any], kubeconfig: Path, secret_values: dict[str, str]
) -> None:
    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    image = _helm_image(deployment["image"])  # the run's image is the user code deployment's
    from_instance, ns_instance, _ = launch_and_capture(
        _launcher_config(k8s_instance["run_launcher"]["config"], kubeconfig), image
    )
    rendered = render_helm_run_launcher(helm)
    assert "job_image" not in rendered
    from_helm, ns_helm, run = launch_and_capture(_launcher_config(rendered, kubeconfig), image)

    assert ns_helm == ns_instance
    a, b = _container(from_instance), _container(from_helm)
    for key in ("image", "imagePullPolicy", "envFrom", "resources", "securityContext", "volumeMounts"):
        assert a[key] == b[key], key
    pod_a, pod_b = from_instance["spec"]["template"]["spec"], from_helm["spec"]["template"]["spec"]
    for key in ("serviceAccountName", "volumes", "restartPolicy"):
        assert pod_a[key] == pod_b[key], key
    for key in ("backoffLimit", "ttlSecondsAfterFinished"):
        assert from_instance["spec"][key] == from_helm["spec"][key], key
    env_a = {e["name"]: e for e in a["env"]}
    env_b = {e["name"]: e for e in b["env"]}
    assert {k: v for k, v in env_b.items() if k != "DAGSTER_PG_PASSWORD"} == env_a
    # the chart's own password variable comes from the same Secret, by reference
    assert env_b["DAGSTER_PG_PASSWORD"] == {
        "name": "DAGSTER_PG_PASSWORD",
        "valueFrom": {"secretKeyRef": {"key": "postgresql-password", "name": "evalgate-postgres"}},
    }
    assert from_helm["metadata"]["labels"]["dagster/run-id"] == run.run_id
    for value in secret_values.values():
        assert value not in json.dumps(from_helm)


PER_STEP = DEPLOY / "helm" / "per_step_definitions.py"


def test_per_step_definitions_launch_one_pod_per_step(
    k8s_instance: dict[str, Any], kubeconfig: Path, secret_values: dict[str, str]
) -> None:
    """The one-pod-per-step option: the same definitions under dagster-k8s's ``k8s_job_executor``, and the
    Job its step handler builds for one step of a real run (the API call captured, as for runs)."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
    from dagster._core.execution.context_creation_job import create_context_free_log_manager
    from dagster._core.execution.plan.step import ExecutionStep
    from dagster._core.executor.step_delegating import StepHandlerContext
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.executor import K8sStepHandler

    import eval_assets.definitions as in_process

    recon = ReconstructableRepository.for_file(str(PER_STEP), "defs", str(REPO)).get_reconstructable_job(
        "__ASSET_JOB"
    )
    job_def = recon.get_definition()
    assert job_def.executor_def.name == "k8s"
    assert in_process.defs().resolve_implicit_global_asset_job_def().executor_def.name == "in_process"
    per_step = recon.repository.get_definition()
    base = in_process.defs().get_repository_def()
    assert per_step.asset_graph.get_all_asset_keys() == base.asset_graph.get_all_asset_keys()
    assert per_step.asset_graph.asset_check_keys == base.asset_graph.asset_check_keys
    assert {s.name for s in per_step.sensor_defs} == {s.name for s in base.sensor_defs}
    assert set(per_step.get_top_level_resources()) == set(base.get_top_level_resources())

    raw = k8s_instance["run_launcher"]["config"]
    launcher = _launcher_config(raw, kubeconfig)
    run_launcher = {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher}
    with instance_for_test(overrides={"run_launcher": run_launcher}) as instance:
        tags = {"dagster/partition": PARTITION}
        plan = create_execution_plan(recon, tags=tags)
        step = "predictions__arc_easy"
        assert step in {s.key for s in plan.steps}
        run = create_run_for_test(
            instance, job_name="__ASSET_JOB", job_code_origin=recon.get_python_origin(), tags=tags
        )
        batch_api = mock.MagicMock()
        # what k8s_job_executor builds for its (empty) step config, with the API client recorded
        handler = K8sStepHandler(
            image=None,
            container_context=K8sContainerContext(),
            load_incluster_config=False,
            kubeconfig_file=str(kubeconfig),
            k8s_client_batch_api=batch_api,
            k8s_client_core_api=mock.MagicMock(),
        )
        context = StepHandlerContext(
            instance=instance,
            plan_context=PlanOrchestrationContext(
                plan_data=PlanData(job=recon, dagster_run=run, instance=instance, execution_plan=plan),
                log_manager=create_context_free_log_manager(instance, run),
                executor=mock.MagicMock(),
                output_capture=None,
            ),
            steps=[s for s in plan.steps if isinstance(s, ExecutionStep)],
            execute_step_args=ExecuteStepArgs(
                job_origin=recon.get_python_origin(),
                run_id=run.run_id,
                step_keys_to_execute=[step],
                instance_ref=instance.get_ref(),
            ),
            dagster_run=run,
        )
        list(handler.launch_step(context))
    assert batch_api.create_namespaced_job.call_count == 1
    call = batch_api.create_namespaced_job.call_args
    job = kubernetes.client.ApiClient().sanitize_for_serialization(call.kwargs["body"])
    container = _container(job)
    assert call.kwargs["namespace"] == raw["job_namespace"]
    assert container["image"] == raw["job_image"]
    assert container["args"] == ["dagster", "api", "execute_step"]
    # the step's arguments come compressed in an env var (`dagster api execute_step` reads it)
    env = {e["name"]: e for e in container["env"]}
    compressed = env["DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS"]["value"]
    step_args = deserialize_value(zlib.decompress(base64.b64decode(compressed)).decode(), ExecuteStepArgs)
    assert step_args.step_keys_to_execute == [step] and step_args.run_id == run.run_id
    assert env["DAGSTER_RUN_STEP_KEY"]["value"] == step
    labels = job["metadata"]["labels"]
    assert labels["dagster/op"] == step and labels["dagster/run-id"] == run.run_id
    assert labels["app.kubernetes.io/component"] == "step_worker"
    # a step pod has what a run pod has: the secrets by name, the volumes, the limits, no retries
    assert container["envFrom"] == [{"configMapRef": {"name": CONFIG_MAP}}] + [
        {"secretRef": {"name": name}} for name in SECRETS
    ]
    assert container["resources"]["limits"] == raw["resources"]["limits"]
    assert {m["name"] for m in container["volumeMounts"]} == {"evalgate-home", "models"}
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == raw["service_account_name"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == 86400
    for value in secret_values.values():
        assert value not in json.dumps(job)


# -- consistency of the files ----------------------------------------------------------------------------------


def test_helm_values_match_the_instance_config(k8s_instance: dict[str, Any], helm: dict[str, Any]) -> None:
    raw = k8s_instance["run_launcher"]["config"]
    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    images = {
        "user code": _helm_image(deployment["image"]),
        "webserver": _helm_image(helm["dagsterWebserver"]["image"]),
        "daemon": _helm_image(helm["dagsterDaemon"]["image"]),
    }
    assert set(images.values()) == {raw["job_image"]}, images
    assert helm["dagster-user-deployments"]["enabled"] is True

    # the code location: the module workspace.yaml and pyproject's [tool.dagster] load
    workspace = _load(REPO / "workspace.yaml")
    module = workspace["load_from"][0]["python_module"]["module_name"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert module == pyproject["tool"]["dagster"]["module_name"] == "eval_assets.definitions"
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": False}

    # secrets and settings by the same names
    k8s = helm["runLauncher"]["config"]["k8sRunLauncher"]
    assert _names(k8s["envSecrets"]) == raw["env_secrets"] == list(SECRETS)
    assert _names(k8s["envConfigMaps"]) == raw["env_config_maps"] == [CONFIG_MAP]
    assert helm["global"]["postgresqlSecretName"] == "evalgate-postgres"
    assert helm["generatePostgresqlPasswordSecret"] is False
    assert set(_names(deployment["envSecrets"])) <= set(SECRETS)
    assert "evalgate-slack" in _names(deployment["envSecrets"]), "the alerts sensor runs in the code server"

    # the same namespace, service account, home, limits, Job settings
    assert k8s["jobNamespace"] == raw["job_namespace"]
    assert (
        helm["global"]["serviceAccountName"] == helm["serviceAccount"]["name"] == raw["service_account_name"]
    )
    assert helm["global"]["dagsterHome"] == raw["dagster_home"]
    assert k8s["envVars"] == raw["env_vars"]
    assert k8s["resources"] == raw["resources"]
    assert k8s["runK8sConfig"]["jobSpecConfig"] == {"backoffLimit": 0, "ttlSecondsAfterFinished": 86400}
    assert raw["run_k8s_config"]["job_spec_config"] == {
        "backoff_limit": 0,
        "ttl_seconds_after_finished": 86400,
    }

    # Postgres as in the instance config, the run queue as in dagster.yaml
    assert helm["postgresql"]["enabled"] is False
    assert (
        helm["postgresql"]["postgresqlScheme"] == k8s_instance["storage"]["postgres"]["postgres_db"]["scheme"]
    )
    assert helm["dagsterDaemon"]["runCoordinator"] == {"enabled": True, "type": "QueuedRunCoordinator"}
    default = _load(REPO / "dagster.yaml")
    assert helm["concurrency"] == {
        "enabled": True,
        "runs": {"maxConcurrentRuns": default["concurrency"]["runs"]["max_concurrent_runs"]},
    }
    assert helm["additionalInstanceConfig"] == {
        "local_artifact_storage": k8s_instance["local_artifact_storage"]
    }
    custom_logs = helm["computeLogManager"]["config"]["customComputeLogManager"]
    assert helm["computeLogManager"]["type"] == "CustomComputeLogManager"
    assert {
        "module": custom_logs["module"],
        "class": custom_logs["class"],
        "config": custom_logs["config"],
    } == (k8s_instance["compute_logs"])
    webserver_mounts = {m["name"]: m["mountPath"] for m in helm["dagsterWebserver"]["volumeMounts"]}
    assert Path(custom_logs["config"]["base_dir"]).is_relative_to(webserver_mounts["evalgate-home"])
    monitoring = helm["dagsterDaemon"]["runMonitoring"]
    assert monitoring["startTimeoutSeconds"] == k8s_instance["run_monitoring"]["start_timeout_seconds"]
    assert monitoring["maxResumeRunAttempts"] == k8s_instance["run_monitoring"]["max_resume_run_attempts"]
    assert helm["telemetry"] == default["telemetry"]


_SECRETISH = re.compile(r"password|passwd|token|secret|api_?key", re.IGNORECASE)
#: Keys that name a Secret rather than hold a value.
_NAME_KEYS = {"postgresqlSecretName", "postgres_password_secret", "generatePostgresqlPasswordSecret"}


def _secret_values_in(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}"
            if (
                _SECRETISH.search(str(key))
                and str(key) not in _NAME_KEYS
                and not isinstance(value, dict | list)
            ):
                yield f"{where} = {value!r}"
            yield from _secret_values_in(value, where)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, str) and "=" in value and _SECRETISH.search(value.split("=", 1)[0]):
                yield f"{path}[{index}] = {value!r}"
            if isinstance(value, dict) and "value" in value and _SECRETISH.search(str(value.get("name", ""))):
                yield f"{path}[{index}] = {value!r}"
            yield from _secret_values_in(value, f"{path}[{index}]")


@pytest.mark.parametrize("path", [K8S_YAML, HELM_VALUES], ids=lambda p: p.name)
def test_no_secret_value_in_the_deploy_files(path: Path) -> None:
    assert list(_secret_values_in(_load(path))) == []
    text = path.read_text(encoding="utf-8")
    for prefix in ("xoxb-", "xoxp-", "sk-ant-"):  # Slack and Anthropic token shapes
        assert prefix not in text


def test_secret_scan_finds_an_inlined_value() -> None:
    """The scan above is not vacuous: each way of inlining a secret is caught."""
    assert list(_secret_values_in({"env_vars": ["SLACK_BOT_TOKEN=xoxb-1"]}))
    assert list(_secret_values_in({"postgresql": {"postgresqlPassword": "hunter2"}}))
    assert list(_secret_values_in({"env": [{"name": "ANTHROPIC_API_KEY", "value": "k"}]}))
    assert not list(_secret_values_in({"env": [{"name": "EVALGATE_HOME", "value": "/x"}]}))


# -- the image -------------------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per Dockerfile instruction, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    instructions = []
    for line in lines:
        name, _, rest = line.partition(" ")
        instructions.append((name.upper(), rest.strip()))
    return instructions


def _run_commands() -> list[list[str]]:
    """Every shell command of every RUN, as words."""
    commands: list[list[str]] = []
    for name, rest in _dockerfile():
        if name != "RUN":
            continue
        lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in {"&&", "||", ";", "|"}:
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(token)
    return commands


def test_dockerfile_installs_the_sandbox_packages() -> None:
    installs = [c for c in _run_commands() if c[:2] == ["apt-get", "install"]]
    assert installs, "no apt-get install"
    packages = {word for command in installs for word in command[2:] if not word.startswith("-")}
    assert {"bubblewrap", "util-linux", "libseccomp2"} <= packages
    checks = {command[0] for command in _run_commands()}
    assert {"bwrap", "setpriv", "prlimit"} <= checks, "the build proves each sandbox tool runs"


def test_dockerfile_pins_every_pip_install_with_constraints() -> None:
    pip_installs = [c for c in _run_commands() if c[:2] == ["pip", "install"]]
    assert len(pip_installs) >= 2
    for command in pip_installs:
        assert "-c" in command and command[command.index("-c") + 1] == "constraints.txt", command
    project = [c for c in pip_installs if any(w.startswith(".[") for w in c)]
    assert project and "-e" in project[0], "installed editable, as .ci/setup does (evalgate reads deploy/)"
    (target,) = [w for w in project[0] if w.startswith(".[")]
    assert "EXTRAS" in target
    torch = [c for c in pip_installs if "torch==2.13.0" in c]
    assert torch and "--index-url" in torch[0], "torch from the CPU index, at the pinned version"
    assert ["pip", "check"] in _run_commands()
    # the extras installed include the k8s one: the run pod needs dagster-k8s and dagster-postgres
    (extras,) = [rest for name, rest in _dockerfile() if name == "ARG" and rest.startswith("EXTRAS=")]
    names = set(extras.split("=", 1)[1].split(","))
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    optional = pyproject["project"]["optional-dependencies"]
    assert names <= set(optional)
    assert {"dagster-k8s", "dagster-postgres"} <= {Requirement(r).name for r in optional["k8s"]}
    assert "constraints.txt" in {
        word for name, rest in _dockerfile() if name == "COPY" for word in rest.split()
    }


def test_dockerfile_installs_the_data_and_runs_dagster_without_an_entrypoint() -> None:
    assert ["evalgate", "data", "install"] in _run_commands()
    instructions = _dockerfile()
    names = [name for name, _ in instructions]
    assert "ENTRYPOINT" not in names, "dagster-k8s sets args only; an ENTRYPOINT would swallow them"
    env = " ".join(rest for name, rest in instructions if name == "ENV")
    assert "PATH=/opt/evalgate/.venv/bin:" in env, "`dagster` (the run's entry point) is on PATH"
    assert "EVALGATE_DATA_DIR=/opt/evalgate/data" in env
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in env
    assert names[0] == "FROM" and "python:3.11" in instructions[0][1]
    # every COPY source exists, so the build's context is complete
    for name, rest in instructions:
        if name == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"


# -- the pins ----------------------------------------------------------------------------------------------------


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_canonical(name)] = version
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_dagster_k8s_and_everything_it_needs_are_pinned_and_installed() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "dagster-k8s==0.29.27" in pyproject["project"]["optional-dependencies"]["dev"]
    pins = _pins()
    assert pins["dagster-k8s"] == "0.29.27"
    # the whole dependency closure of dagster-k8s, as installed here, is pinned at the installed versions
    seen: set[str] = set()
    todo = ["dagster-k8s"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        assert pins.get(name) == dist.version, f"{name} {dist.version} is not pinned in constraints.txt"
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_canonical(requirement.name))
    assert {"kubernetes", "google-auth"} <= seen
