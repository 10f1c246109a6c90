"""The ``judge`` resource: one interface, three backends. ``embedded`` (default: a local model, no key, no
network), ``anthropic`` (Messages API, Message Batches for bulk, prompt caching, a pinned dated model id, priced
by the table in config) and ``openai`` (any OpenAI-compatible server, e.g. ``vllm serve``). Secrets come in as
config (``dg.EnvVar("ANTHROPIC_API_KEY")``), never read at import."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from eval_assets.judge._independence import EMBEDDED_FAMILY, EMBEDDED_NAME

if TYPE_CHECKING:
    from eval_assets.judge._run import JudgeBackend


class JudgeResource(dg.ConfigurableResource):
    backend: Literal["embedded", "anthropic", "openai"] = "embedded"
    model: str | None = Field(
        default=None, description="anthropic: a dated model id; openai: the served name"
    )
    api_key: str | None = Field(default=None, description="anthropic / openai key (pass dg.EnvVar(...))")
    base_url: str | None = Field(
        default=None, description="API base URL (anthropic: default api.anthropic.com)"
    )
    model_hash: str | None = Field(
        default=None, description="openai: sha256 of the weights the server serves"
    )
    family: str | None = Field(
        default=None, description="openai: the served model's family (e.g. qwen, llama)"
    )
    use_batches: bool = Field(default=True, description="anthropic: send bulk runs as one Message Batch")
    max_retries: int = Field(default=3, ge=0, le=10, description="retries of a 429/5xx/timeout, per call")
    max_parse_retries: int = Field(default=2, ge=0, le=5, description="re-asks of an unparseable verdict")
    max_tokens: int = Field(default=1024, gt=0, description="the judge's reply budget (reasoning + verdict)")
    prices_path: str | None = Field(
        default=None, description="a price table (default: eval_assets/judge/prices.yaml)"
    )
    batch_poll_s: float = Field(default=10.0, gt=0)
    models_dir: str | None = Field(
        default=None,
        description="embedded: where its weights are assembled and converted, keyed by hash "
        "(default: ~/.cache/evalgate/judge_models)",
    )

    validate_in_checkpoint_runs: bool = Field(
        default=False,
        description="compute judge_validation (234 judgements on HHH) inside a checkpoint's run "
        "when none is stored; off: only an unpartitioned run of judge_validation computes it",
    )

    def models(self) -> Path:
        return (
            Path(self.models_dir).expanduser()
            if self.models_dir
            else Path.home() / ".cache" / "evalgate" / "judge_models"
        )

    def open(self, data_root: Path) -> JudgeBackend:
        """The backend these settings name. Raises ``ValueError`` naming the missing setting."""
        from eval_assets.judge._prices import load_prices

        prices = load_prices(Path(self.prices_path) if self.prices_path else None)
        if self.backend == "anthropic":
            from resources.judges.anthropic_judge import DEFAULT_MODEL, AnthropicJudge

            if not self.api_key:
                raise ValueError(
                    "judge backend anthropic: set JudgeResource.api_key (dg.EnvVar('ANTHROPIC_API_KEY'))"
                )
            model = self.model or DEFAULT_MODEL
            return AnthropicJudge(
                api_key=self.api_key, model=model, price=prices.price(model), base_url=self.base_url,
                use_batches=self.use_batches, max_retries=self.max_retries, batch_poll_s=self.batch_poll_s,
            )  # fmt: skip
        if self.backend == "openai":
            from resources.judges.openai_judge import OpenAICompatibleJudge

            if not (self.base_url and self.model and self.model_hash and self.family):
                raise ValueError(
                    "judge backend openai: set JudgeResource.base_url, .model, .model_hash (sha256 of the served "
                    "weights, as `evalgate register` prints it) and .family"
                )
            return OpenAICompatibleJudge(
                base_url=self.base_url, model=self.model, model_hash=self.model_hash, family=self.family,
                api_key=self.api_key or "EMPTY", price=prices.models.get(self.model), max_retries=self.max_retries,
            )  # fmt: skip
        from resources.judges.embedded import EmbeddedJudge, embedded_weights

        weights, weights_hash = embedded_weights(data_root, self.models())
        return EmbeddedJudge(weights, weights_hash, self.models(), name=EMBEDDED_NAME, family=EMBEDDED_FAMILY)
