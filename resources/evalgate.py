"""Dagster resources: the evalgate home (registry, cache, results, production pointer), the model runner,
and suite settings. Each is a thin ``ConfigurableResource`` over plain classes that know nothing of Dagster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from eval_assets.checkpoints import CheckpointManifest
from eval_assets.datapkgs import data_dir
from eval_assets.paths import HomeLayout, default_home, overrides_dir
from resources.checkpoint_registry import CheckpointRegistry
from resources.prediction_cache import PredictionCache
from resources.production_ledger import ProductionLedger
from resources.results_store import ResultsStore
from resources.runners.base import CheckpointRef, ModelBackend
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

    @property
    def layout(self) -> HomeLayout:
        return HomeLayout(Path(self.home).expanduser().resolve() if self.home else default_home())

    def registry(self) -> CheckpointRegistry:
        return CheckpointRegistry(self.layout.registry)

    def prediction_cache(self) -> PredictionCache:
        return PredictionCache(self.layout.tables / "prediction_cache")

    def results(self) -> ResultsStore:
        return ResultsStore(self.layout.tables)

    def ledger(self) -> ProductionLedger:
        """Production, derived from the verified history of moves in ``gate_decisions``."""
        layout = self.layout
        return ProductionLedger(self.results(), self.registry(), layout.production_pointer, layout.production_lock)

    def overrides(self) -> Path:
        return overrides_dir(self.layout, self.overrides_dir)


class SuiteSettings(dg.ConfigurableResource):
    """Which profile of each suite to run (``smoke`` or ``full``), where the data packages are, and where the
    user's own suite specs live (besides the built-in ones)."""

    profile: str = "smoke"
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


class ModelRunner(dg.ConfigurableResource):
    """Opens a checkpoint on the backend its manifest names. The embedded default is transformers on CPU
    (CUDA when present); vLLM and any OpenAI-compatible server are production backends, imported only when
    chosen. :meth:`engine` names the engine these settings give, without loading the model (the key of a fully
    cached run); prediction checks it against the engine the opened backend reports."""

    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(default=8, gt=0)
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_model: str | None = None
    openai_model_hash: str | None = Field(
        default=None,
        description="sha256 of the weights the OpenAI-compatible server serves (as `evalgate register` prints it); "
        "required for the openai backend, and must be the checkpoint's",
    )
    vllm_gpu_memory_utilization: float = 0.85
    vllm_device: str = Field(default="cuda", description="the device vLLM runs on, as its platform names it")
    vllm_max_model_len: int | None = Field(
        default=None, gt=0, description="default: the checkpoint config's context length, passed to vLLM explicitly"
    )
    vllm_tensor_parallel_size: int = Field(default=1, gt=0)
    openai_tokenizer: str | None = Field(
        default=None, description="local path or hub id of the served model's tokenizer (renders chat prompts)"
    )

    def _ref(self, manifest: CheckpointManifest) -> CheckpointRef:
        return CheckpointRef(
            name=manifest.name, path=Path(manifest.path), format=manifest.format, model_hash=manifest.model_hash
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

    def pool(self) -> SandboxPool:
        if self.backend == "modal":
            from sandboxes import ModalSandbox

            app_name = self.modal_app_name
            return SandboxPool(factory=lambda _worker: ModalSandbox(app_name=app_name), workers=self.workers or 4)
        return SandboxPool(workers=self.workers)
