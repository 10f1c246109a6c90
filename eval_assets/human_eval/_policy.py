"""The sampling policy: a versioned pydantic model of ``policy.yaml`` (``extra="forbid"``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

POLICY_FILE = Path(__file__).with_name("policy.yaml")


class SamplingPolicy(BaseModel):
    """How many items of each checkpoint people label, and how the sample is stratified."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    seed: int = Field(ge=0)
    kinds: tuple[str, ...] = ("generation", "pairwise", "refusal")
    per_suite: int = Field(default=20, ge=1)
    min_per_stratum: int = Field(default=2, ge=0)
    oversample: dict[str, float] = Field(default_factory=dict)
    suites: dict[str, int] = Field(default_factory=dict)

    def size(self, suite: str) -> int:
        return self.suites.get(suite, self.per_suite)

    def weight(self, stratum: str) -> float:
        return self.oversample.get(stratum, 1.0)

    @property
    def policy_hash(self) -> str:
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def load_sampling_policy(path: Path | None = None) -> SamplingPolicy:
    """Read and validate the policy; an error names the file and the field."""
    path = path or POLICY_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the human-eval sampling policy: {exc}") from exc
    try:
        return SamplingPolicy.model_validate(raw)
    except ValidationError as exc:
        fields = "; ".join(f"field `{'.'.join(map(str, e['loc']))}`: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: invalid human-eval sampling policy: {fields}") from exc
