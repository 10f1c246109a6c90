"""The judge price table (``prices.yaml`` beside this module): USD per million tokens per pinned model id."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from eval_assets.yaml_models import parse_yaml_model


class PriceTableError(ValueError):
    """The price table is malformed, or has no entry for the judge's model."""


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float = Field(ge=0)
    cache_read: float = Field(ge=0)
    batch_discount: float = Field(
        default=1.0, gt=0, le=1.0, description="multiplier on every rate in a batch"
    )

    def cost(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_write: int = 0,
        cache_read: int = 0,
        batch: bool = False,
    ) -> float:
        """USD of one call; ``input_tokens`` are the uncached input tokens (as the Messages API reports them)."""
        usd = (
            input_tokens * self.input
            + output_tokens * self.output
            + cache_write * self.cache_write
            + cache_read * self.cache_read
        ) / 1e6
        return usd * (self.batch_discount if batch else 1.0)


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    as_of: str
    models: dict[str, ModelPrice]

    def price(self, model: str) -> ModelPrice:
        try:
            return self.models[model]
        except KeyError:
            raise PriceTableError(
                f"no price for judge model {model!r} in the price table (eval_assets/judge/prices.yaml, "
                f"version {self.version}); add one, priced models: {', '.join(sorted(self.models))}"
            ) from None


def load_prices(path: Path | None = None) -> PriceTable:
    source = path or Path(str(resources.files("eval_assets.judge").joinpath("prices.yaml")))
    return parse_yaml_model(
        PriceTable, source.read_text(encoding="utf-8"), source=str(source), what="judge price table",
        error=PriceTableError,
    )  # fmt: skip
