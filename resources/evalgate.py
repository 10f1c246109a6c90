"""Dagster resources: the evalgate home (registry, cache, results, production pointer), the model runner,
and suite settings. Each is a thin ``ConfigurableResource`` over plain classes that know nothing of Dagster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field

from eval_assets.checkpoints import CheckpointManifest
from eval_assets.datapkgs import data_dir
from eval_assets.paths import HomeLayout, default_home, overrides_dir, results_location
from resources.checkpoint_registry import CheckpointRegistry
from resources.prediction_cache import PredictionCache
from resources.production_ledger import ProductionLedger
from resources.production_lock import production_lock
from resources.profile_results import ProfileResults
from resources.results_store import ResultsStore
from resources.runners.base import CheckpointRef, ModelBackend
from resources.table_location import TableLocation
from sandboxes import SandboxPool

if TYPE_CHECKING:
    from resources.runners.openai_backend import OpenAICompatibleBackend


class EvalgateHome(dg.ConfigurableResource):
    """Where evalgate keeps state; ``home`` unset means ``$EVALGATE_HOME`` or ``~/.evalgate`` at run time."""

    home: str | None = None
    overrides_dir: str | None = Field(
        default=None,
        description="the committed override records (default: $EVALGATE_OVERRIDES_DIR, else <home>/overrides)",
    )
    results_uri: str | None = Field(
        default=None,
        description="where the results Delta tables live: a folder or s3://, gs://, az:// URI (default: "
        "$EVALGATE_RESULTS_URI, else <home>/tables)",
    )
    results_storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="deltalake storage options that are not secrets (endpoint, region, allow_http); credentials "
        "come from the environment or results_storage_secrets, and are refused here",
    )
    results_storage_secrets: dict[str, str] = Field(
        default_factory=dict,
        description="storage option name -> environment variable holding its value (read at run time)",
    )
    production_lock_url: str | None = Field(
        default=None,
        description="PostgreSQL server of the production lock, shared by hosts writing the same results "
        "(default: $EVALGATE_PRODUCTION_LOCK_URL, else the Postgres instance's, else a flock on this home); no "
        "password here: PGPASSWORD or ~/.pgpass",
    )

    @property
    def layout(self) -> HomeLayout:
        return HomeLayout(Path(self.home).expanduser().resolve() if self.home else default_home())

    def registry(self) -> CheckpointRegistry:
        return CheckpointRegistry(self.layout.registry)

    def tables(self) -> TableLocation:
        """Where the results tables live (a local folder or an object store), with their storage options."""
        return results_location(
            self.layout, self.results_uri, self.results_storage_options, self.results_storage_secrets
        )

    def prediction_cache(self) -> PredictionCache:
        return PredictionCache(self.tables() / "prediction_cache")

    def results(self) -> ResultsStore:
        return ResultsStore(self.tables())

    def profile_results(self) -> ProfileResults:
        return ProfileResults(self.tables())

    def ledger(self) -> ProductionLedger:
        """Production, derived from the verified history of moves in ``gate_decisions``."""
        layout = self.layout
        tables = self.tables()
        lock = production_lock(
            layout.production_lock, tables.uri, url=self.production_lock_url, remote=tables.is_remote
        )
        return ProductionLedger(ResultsStore(tables), self.registry(), layout.production_pointer, lock)

    def overrides(self) -> Path:
        return overrides_dir(self.layout, self.overrides_dir)


class SuiteSettings(dg.ConfigurableResource):
    """Which profile of each suite to run (``smoke`` or ``full``), where the data packages are, and where the
    user's own suite specs live (besides the built-in ones)."""

    profile: str = "smoke"
    profiles: dict[str, str] = Field(
        default_factory=dict, description="per-suite profiles (suite name -> profile), overriding `profile`"
    )
    data_dir: str | None = None
    suites_dir: str | None = Field(
        default=None, description="a directory of the user's suite specs (default: $EVALGATE_SUITES_DIR)"
    )
    grow: bool = Field(
        default=False,
        description="when the regression gate is inconclusive, evaluate both checkpoints on more items in the "
        "policy's planned stages (group-sequential) until it decides or the suite is used",
    )

    def data_root(self) -> Path:
        return Path(self.data_dir).expanduser().resolve() if self.data_dir else data_dir()

    def profile_for(self, suite: str) -> str:
        """The profile ``suite`` runs: its entry in ``profiles``, else ``profile``."""
        return self.profiles.get(suite, self.profile)


class ModelRunner(dg.ConfigurableResource):
    """Opens a checkpoint on the backend its manifest names. The embedded default is transformers on CPU
    (CUDA when present); vLLM and any OpenAI-compatible server are production backends, imported only when
    chosen. :meth:`engine` names the engine these settings give, without loading the model (the key of a fully
    cached run); prediction checks it against the engine the opened backend reports."""

    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(default=8, gt=0)
    openai_base_url: str | None = None
    openai_api_key: str | None = Field(
        default=None, description="a secret: give it as dg.EnvVar(NAME) (the config does), never as a value"
    )
    openai_model: str | None = None
    openai_model_hash: str | None = Field(
        default=None,
        description="sha256 of the weights the OpenAI-compatible server serves (as `evalgate register` prints it); "
        "required for the openai backend, and must be the checkpoint's",
    )
    vllm_gpu_memory_utilization: float = 0.85
    vllm_device: str = Field(default="cuda", description="the device vLLM runs on, as its platform names it")
    vllm_max_model_len: int | None = Field(
        default=None,
        gt=0,
        description="default: the checkpoint config's context length, passed to vLLM explicitly",
    )
    vllm_tensor_parallel_size: int = Field(default=1, gt=0)
    openai_tokenizer: str | None = Field(
        default=None,
        description="local path or hub id of the served model's tokenizer (renders chat prompts)",
    )

    def __repr_args__(self) -> Any:
        """The API key never appears in a repr (a log line of the resource), resolved or not."""
        for name, value in super().__repr_args__():
            yield name, ("<secret>" if name == "openai_api_key" and value is not None else value)

    def _ref(self, manifest: CheckpointManifest) -> CheckpointRef:
        return CheckpointRef(
            name=manifest.name,
            path=Path(manifest.path),
            format=manifest.format,
            model_hash=manifest.model_hash,
        )

    def engine(self, manifest: CheckpointManifest) -> str:
        """The engine id without loading the model (so a fully cached run loads nothing; an OpenAI-compatible
        server is asked what it serves, nothing more)."""
        if manifest.backend == "transformers":
            from resources.runners.transformers_backend import engine_id

            return engine_id(self.device, self.dtype)
        if manifest.backend == "vllm":
            from resources.runners.vllm_backend import expected_engine_id

            return expected_engine_id(
                self._ref(manifest),
                dtype=self.dtype,
                device=self.vllm_device,
                max_model_len=self.vllm_max_model_len,
                tensor_parallel_size=self.vllm_tensor_parallel_size,
            )
        backend = self._openai(manifest)
        try:
            return backend.engine
        finally:
            backend.close()

    def _openai(self, manifest: CheckpointManifest) -> OpenAICompatibleBackend:
        from resources.runners.openai_backend import OpenAICompatibleBackend

        if not self.openai_base_url:
            raise ValueError(
                f"checkpoint {manifest.name} uses the openai backend: set ModelRunner.openai_base_url "
                "(for example http://host:8000/v1 for `vllm serve`)"
            )
        if self.openai_model_hash is None:
            raise ValueError(
                f"checkpoint {manifest.name} uses the openai backend: set ModelRunner.openai_model_hash to the "
                f"hash of the weights the server at {self.openai_base_url} serves (this checkpoint's is "
                f"{manifest.model_hash}), so its outputs are keyed on what it serves"
            )
        if self.openai_model_hash != manifest.model_hash:
            raise ValueError(
                f"checkpoint {manifest.name} is {manifest.model_hash}, but the server at {self.openai_base_url} "
                f"is declared to serve {self.openai_model_hash} (ModelRunner.openai_model_hash): its outputs "
                "would be another model's. Point the runner at a server of this checkpoint."
            )
        return OpenAICompatibleBackend(
            base_url=self.openai_base_url,
            api_key=self.openai_api_key or "EMPTY",
            model=self.openai_model or manifest.name,
            model_hash=self.openai_model_hash,
            tokenizer=self.openai_tokenizer,
        )

    def open(self, manifest: CheckpointManifest, cache_dir: Path) -> ModelBackend:
        ref = self._ref(manifest)
        if manifest.backend == "transformers":
            from resources.runners.transformers_backend import TransformersBackend

            return TransformersBackend(
                ref, cache_dir=cache_dir, device=self.device, dtype=self.dtype, batch_size=self.batch_size
            )
        if manifest.backend == "vllm":
            from resources.runners.vllm_backend import VLLMBackend

            return VLLMBackend(
                ref,
                cache_dir=cache_dir,
                dtype=self.dtype,
                gpu_memory_utilization=self.vllm_gpu_memory_utilization,
                max_model_len=self.vllm_max_model_len,
                tensor_parallel_size=self.vllm_tensor_parallel_size,
            )
        return self._openai(manifest)


class CodeSandbox(dg.ConfigurableResource):
    """Where model-written programs run: the local bubblewrap backend (default) or Modal Sandboxes. Never
    unisolated: a backend that cannot isolate refuses to run."""

    backend: Literal["local", "modal"] = "local"
    workers: int | None = Field(default=None, gt=0, description="default: two per CPU, bounded by memory")
    modal_app_name: str = "evalgate-sandboxes"
    modal_cpu: float = Field(default=1.0, gt=0, description="cores requested and capped per Modal sandbox")
    modal_region: str | None = None

    def pool(self) -> SandboxPool:
        if self.backend == "modal":
            from sandboxes import ModalSandbox

            app_name, cpu, region = self.modal_app_name, self.modal_cpu, self.modal_region
            return SandboxPool(
                factory=lambda _worker: ModalSandbox(app_name=app_name, cpu=cpu, region=region),
                workers=self.workers or 4,
            )
        return SandboxPool(workers=self.workers)
