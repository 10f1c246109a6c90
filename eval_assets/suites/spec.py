"""Suite specs: pydantic models with ``extra="forbid"`` and explicit versions, loaded from YAML.

A malformed spec fails with the file and the field named. ``suite_code_version`` hashes everything that shapes
a suite's outputs (spec, template version, scorer version), so a changed template marks exactly the dependent
Dagster assets stale.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eval_assets.hashing import hash_value
from eval_assets.yaml_models import parse_yaml_model

SUITES_PACKAGE = "eval_assets.suites"


class SuiteSpecError(ValueError):
    """A suite spec file is malformed; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Profile(_Strict):
    """How much of a suite to run. ``limit`` items are drawn by a seeded hash order, so a larger limit is a
    superset of a smaller one and a grown profile only runs the new items."""

    limit: int | None = Field(default=None, gt=0)
    seed: int = 0
    samples: int | None = Field(default=None, gt=0, description="samples per item; overrides sampling.n")


class Sampling(_Strict):
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(default=256, gt=0)
    stop: tuple[str, ...] = ()
    seed: int = 0
    n: int = Field(default=1, gt=0, description="samples per item (code suites: for pass@k)")


class Template(_Strict):
    version: int = Field(ge=1)
    num_fewshot: int = Field(default=0, ge=0)
    chat: bool = False
    system: str | None = None


class ExecutionLimits(_Strict):
    """Per-program sandbox limits of a code suite (CPU time, with a wall-clock backstop; memory)."""

    cpu_seconds: float = Field(default=10.0, gt=0)
    memory_mb: int = Field(default=512, gt=0)


class SuiteSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: int = Field(ge=1)
    description: str
    kind: Literal["likelihood", "generation", "code"]
    loader: Literal["mmlu", "arc_easy", "gsm8k", "humaneval", "mbpp"]
    metric: Literal["acc", "exact_match", "pass_at_k"]
    scorer_version: int = Field(ge=1)
    template: Template
    sampling: Sampling | None = None
    pass_at: tuple[int, ...] = (1,)
    limits: ExecutionLimits | None = None
    profiles: dict[str, Profile]

    @model_validator(mode="after")
    def _consistent(self) -> SuiteSpec:
        if self.kind in ("generation", "code") and self.sampling is None:
            raise ValueError(f"a {self.kind} suite needs a `sampling` section")
        if (self.kind == "code") != (self.metric == "pass_at_k"):
            raise ValueError("`metric: pass_at_k` goes with `kind: code` and only with it")
        if self.kind != "code" and self.limits is not None:
            raise ValueError("`limits` applies to code suites only")
        if self.sampling is not None and self.sampling.temperature == 0 and (
            self.sampling.n > 1 or any((p.samples or 1) > 1 for p in self.profiles.values())
        ):
            raise ValueError("several samples per item need `sampling.temperature` > 0 (greedy repeats itself)")
        if self.kind == "likelihood" and self.sampling is not None:
            raise ValueError("a likelihood suite takes no `sampling` section")
        if "smoke" not in self.profiles or "full" not in self.profiles:
            raise ValueError("`profiles` must define both `smoke` and `full`")
        return self

    def samples(self, profile: str) -> int:
        """Samples per item under ``profile``."""
        override = self.profile(profile).samples
        return override or (self.sampling.n if self.sampling else 1)

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise SuiteSpecError(
                f"suite {self.name!r} has no profile {name!r}; choose one of {sorted(self.profiles)}"
            ) from None


def parse_suite_spec(text: str, source: str) -> SuiteSpec:
    """Parse one YAML spec; ``source`` names it in errors."""
    return parse_yaml_model(SuiteSpec, text, source=source, what="suite spec", error=SuiteSpecError)


def load_suite_spec(path: Path) -> SuiteSpec:
    spec = parse_suite_spec(path.read_text(encoding="utf-8"), str(path))
    if spec.name != path.stem:
        raise SuiteSpecError(f"{path}: field `name` is {spec.name!r} but the file is named {path.stem!r}")
    return spec


def builtin_spec_paths() -> list[Path]:
    root = resources.files(SUITES_PACKAGE)
    return sorted(Path(str(entry)) for entry in root.iterdir() if entry.name.endswith(".yaml"))


def load_suite_specs(paths: list[Path] | None = None) -> dict[str, SuiteSpec]:
    """The built-in suites (or the given spec files), by name."""
    specs = [load_suite_spec(path) for path in (paths or builtin_spec_paths())]
    return {spec.name: spec for spec in specs}


def suite_code_version(spec: SuiteSpec) -> str:
    """Dagster ``code_version`` of a suite's assets: a short hash of the whole spec."""
    return hash_value(spec.model_dump(mode="json"))[:16]
