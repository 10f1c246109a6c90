"""Suite specs: pydantic models with ``extra="forbid"`` and explicit versions, loaded from YAML.

A malformed spec fails with the file and the field named. ``kind``, ``loader`` and ``metric`` name registered
components (:mod:`eval_assets.kinds`); an unknown name is refused with the registered choices listed, and the
spec's ``data`` and ``scorer`` sections are validated by the chosen loader's and scorer's own models.

``suite_code_version(spec, profile)`` hashes everything that shapes a suite's outputs under one profile (spec,
template version, scorer version, pinned data hashes, that profile's selection and samples per item, but not
the other profiles), so a changed template marks exactly the dependent Dagster assets stale and editing the
``full`` profile leaves ``smoke`` assets as they were. Fields added to the schema after its first version
(``ADDED_FIELDS``) enter that hash only when set to something other than their default, so adding a field never
changes the version of a suite that does not use it.

User suites come from a directory (:func:`suite_specs_from`: ``SuiteSettings.suites_dir`` or
``$EVALGATE_SUITES_DIR``, read when called). A user spec may not take a built-in suite's name unless it says
``replaces_builtin: true``; it then replaces the built-in one, and ``evalgate suites list`` shows its file.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from eval_assets.hashing import hash_value
from eval_assets.kinds._errors import SpecFieldError, rerooted, spec_error
from eval_assets.kinds._registry import KINDS, LOADERS, SCORERS, loaders_for, scorers_for
from eval_assets.yaml_models import parse_yaml_model

SUITES_PACKAGE = "eval_assets.suites"
SUITES_DIR_ENV = "EVALGATE_SUITES_DIR"
SPEC_SUFFIXES = (".yaml", ".yml")


class SuiteSpecError(ValueError):
    """A suite spec file is malformed; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: fields added after the schema's first version: they enter the code version only when not at default.
    ADDED_FIELDS: ClassVar[tuple[str, ...]] = ()
    #: fields that never enter the code version (they do not shape outputs).
    UNVERSIONED_FIELDS: ClassVar[tuple[str, ...]] = ()


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
    """The prompt. ``version`` is bumped by hand whenever the rendered prompt changes. The rendering fields
    (``format`` onwards) apply to loaders that render a user's records (``file``); built-in loaders and
    ``lm_eval`` render their own prompt and refuse them."""

    ADDED_FIELDS: ClassVar[tuple[str, ...]] = (
        "format",
        "choice_format",
        "target_format",
        "preamble",
        "fewshot_separator",
        "fewshot_sampler",
    )
    RENDERING_FIELDS: ClassVar[tuple[str, ...]] = ADDED_FIELDS

    version: int = Field(ge=1)
    num_fewshot: int = Field(default=0, ge=0)
    chat: bool = False
    system: str | None = None
    format: str | None = Field(
        default=None,
        description="the item's prompt: a Python format string over the record's fields, e.g. "
        "'Question: {question}\\nAnswer:' (default: that, or '{context}\\n' before it when a context is mapped)",
    )
    choice_format: str = Field(
        default=" {choice}", description="likelihood: each continuation ({choice}, {label}, {index})"
    )
    target_format: str | None = Field(
        default=None,
        description="the answer after a few-shot example's prompt (default: likelihood, the gold choice as "
        "choice_format renders it; generation, ' {answer}')",
    )
    preamble: str = Field(default="", description="text before the few-shot examples (lm-eval's description)")
    fewshot_separator: str = "\n\n"
    fewshot_sampler: Literal["first_n", "hashed"] = Field(
        default="first_n",
        description="first_n: the pool's first examples; hashed: a per-item order seeded by the item id",
    )


class ExecutionLimits(_Strict):
    """Per-program sandbox limits of a code suite (CPU time, with a wall-clock backstop; memory)."""

    cpu_seconds: float = Field(default=10.0, gt=0)
    memory_mb: int = Field(default=512, gt=0)


class SuiteSpec(_Strict):
    ADDED_FIELDS: ClassVar[tuple[str, ...]] = ("scorer", "data")
    UNVERSIONED_FIELDS: ClassVar[tuple[str, ...]] = ("replaces_builtin",)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: int = Field(ge=1)
    description: str
    kind: str = Field(description="a registered suite kind: likelihood, generation, code, ...")
    loader: str = Field(description="a registered loader: file, lm_eval, or a built-in suite's own")
    metric: str = Field(
        description="a registered scorer for the kind (acc; exact_match, regex, ...; pass_at_k)"
    )
    scorer_version: int = Field(ge=1)
    template: Template
    sampling: Sampling | None = None
    pass_at: tuple[int, ...] = (1,)
    limits: ExecutionLimits | None = None
    profiles: dict[str, Profile]
    scorer: dict[str, Any] = Field(default_factory=dict, description="the metric's parameters")
    data: dict[str, Any] | None = Field(
        default=None, description="the loader's options (files, fields, task)"
    )
    replaces_builtin: bool = Field(
        default=False, description="a user spec that takes a built-in suite's name"
    )

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("kind")
    @classmethod
    def _registered_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"unknown suite kind {value!r}; registered kinds: {', '.join(KINDS.names())}")
        return value

    @field_validator("loader")
    @classmethod
    def _registered_loader(cls, value: str) -> str:
        if value not in LOADERS:
            raise ValueError(f"unknown loader {value!r}; registered loaders: {', '.join(LOADERS.names())}")
        return value

    @field_validator("metric")
    @classmethod
    def _registered_metric(cls, value: str, info: ValidationInfo) -> str:
        if value not in SCORERS:
            kind = info.data.get("kind")
            hint = f" (for kind {kind}: {', '.join(scorers_for(kind))})" if isinstance(kind, str) else ""
            raise ValueError(
                f"unknown metric {value!r}; registered metrics: {', '.join(SCORERS.names())}{hint}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SuiteSpec:
        kind = KINDS.get(self.kind)
        if kind.sampling == "required" and self.sampling is None:
            raise ValueError(f"a {self.kind} suite needs a `sampling` section")
        if kind.sampling == "forbidden" and self.sampling is not None:
            raise ValueError(f"a {self.kind} suite takes no `sampling` section")
        scorer = SCORERS.get(self.metric)
        if self.kind not in scorer.kinds:
            raise spec_error(
                ("metric",),
                f"metric `{self.metric}` does not apply to kind {self.kind}; metrics for {self.kind}: "
                f"{', '.join(scorers_for(self.kind))}",
                self.metric,
            )
        if not kind.takes_limits and self.limits is not None:
            takers = [name for name in KINDS.names() if KINDS.get(name).takes_limits]
            raise ValueError(f"`limits` applies to {' and '.join(takers)} suites only")
        if (
            self.sampling is not None
            and self.sampling.temperature == 0
            and (self.sampling.n > 1 or any((p.samples or 1) > 1 for p in self.profiles.values()))
        ):
            raise ValueError(
                "several samples per item need `sampling.temperature` > 0 (greedy repeats itself)"
            )
        if "smoke" not in self.profiles or "full" not in self.profiles:
            raise ValueError("`profiles` must define both `smoke` and `full`")
        try:
            scorer.params.model_validate(self.scorer)
        except ValidationError as exc:
            raise rerooted(("scorer",), exc) from None
        self._check_loader()
        return self

    def _check_loader(self) -> None:
        loader = LOADERS.get(self.loader)
        if not loader.feeds(self.kind):
            raise spec_error(
                ("loader",),
                f"loader `{self.loader}` does not feed {self.kind} suites; "
                f"loaders for {self.kind}: {', '.join(loaders_for(self.kind))}",
                self.loader,
            )
        if loader.options is None and self.data is not None:
            raise spec_error(
                ("data",), f"loader `{self.loader}` takes no `data` section (its data is pinned)"
            )
        if loader.options is not None and self.data is None:
            raise spec_error(("data",), f"loader `{self.loader}` needs a `data` section")
        if not loader.renders_template:
            defaults = Template(version=1)
            for name in Template.RENDERING_FIELDS:
                if getattr(self.template, name) != getattr(defaults, name):
                    renderers = [n for n in LOADERS.names() if LOADERS.get(n).renders_template]
                    raise spec_error(
                        ("template", name),
                        f"loader `{self.loader}` renders its own prompt; `template.{name}` applies to loader "
                        f"{', '.join(renderers)} only",
                    )
        options = self.loader_options()
        if loader.check is not None:
            try:
                loader.check(self, options)
            except SpecFieldError as exc:
                raise spec_error(exc.loc, exc.message) from None
            except ValidationError:
                raise
            except ValueError as exc:
                raise spec_error(("data",), str(exc)) from None

    # -- components ------------------------------------------------------------------------------------------
    def loader_options(self) -> Any:
        """The ``data`` section validated by the loader's options model (``None`` for loaders without)."""
        loader = LOADERS.get(self.loader)
        if loader.options is None or self.data is None:
            return None
        try:
            return loader.options.model_validate(self.data)
        except ValidationError as exc:
            raise rerooted(("data",), exc) from None

    def scorer_params(self) -> Any:
        """The ``scorer`` section validated by the metric's parameter model."""
        return SCORERS.get(self.metric).params.model_validate(self.scorer)

    # -- where it came from -------------------------------------------------------------------------------
    @property
    def source(self) -> Path | None:
        """The spec file it was read from (``None`` when built in code); relative data paths start there."""
        return self._source

    def with_source(self, path: Path | None) -> SuiteSpec:
        self._source = path
        return self

    @property
    def where(self) -> str:
        """How errors name this spec: its file, else ``suite <name>``."""
        return str(self._source) if self._source is not None else f"suite {self.name}"

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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteSpecError(f"{path}: cannot read the suite spec ({exc.strerror or exc})") from None
    spec = parse_suite_spec(text, str(path)).with_source(path.resolve())
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


def resolve_suites_dir(suites_dir: str | Path | None) -> Path | None:
    """``suites_dir`` if given, else ``$EVALGATE_SUITES_DIR`` if set (read now), else ``None``."""
    configured = suites_dir if suites_dir not in (None, "") else os.environ.get(SUITES_DIR_ENV) or None
    return Path(configured).expanduser().resolve() if configured is not None else None


def user_spec_paths(suites_dir: Path) -> list[Path]:
    """The spec files (``*.yaml``, ``*.yml``) directly in ``suites_dir``; data files may sit beside them."""
    if not suites_dir.is_dir():
        raise SuiteSpecError(
            f"suites directory {suites_dir} does not exist (SuiteSettings.suites_dir or ${SUITES_DIR_ENV})"
        )
    return sorted(p for p in suites_dir.iterdir() if p.is_file() and p.suffix in SPEC_SUFFIXES)


def suite_specs_from(suites_dir: str | Path | None) -> dict[str, SuiteSpec]:
    """The built-in suites plus the user's from ``suites_dir`` (or ``$EVALGATE_SUITES_DIR``), by name.

    Raises:
        SuiteSpecError: a malformed user spec; two user specs of one name; a user spec with a built-in's name
            that does not say ``replaces_builtin: true``; ``replaces_builtin`` on a name that is not built in.
    """
    specs = load_suite_specs()
    builtin = set(specs)
    directory = resolve_suites_dir(suites_dir)
    if directory is None:
        return specs
    seen: dict[str, Path] = {}
    for path in user_spec_paths(directory):
        spec = load_suite_spec(path)
        if spec.name in seen:
            raise SuiteSpecError(f"{path}: suite {spec.name!r} is already defined by {seen[spec.name]}")
        seen[spec.name] = path
        if spec.name in builtin and not spec.replaces_builtin:
            raise SuiteSpecError(
                f"{path}: field `name`: {spec.name!r} is a built-in suite; rename yours, or set "
                "`replaces_builtin: true` to evaluate this spec instead of the built-in one"
            )
        if spec.replaces_builtin and spec.name not in builtin:
            raise SuiteSpecError(
                f"{path}: field `replaces_builtin`: there is no built-in suite {spec.name!r} to replace "
                f"(built-in: {', '.join(sorted(builtin))})"
            )
        specs[spec.name] = spec
    return dict(sorted(specs.items()))


def _versioned(model: BaseModel, dump: dict[str, Any]) -> dict[str, Any]:
    cls = type(model)
    for name in getattr(cls, "UNVERSIONED_FIELDS", ()):
        dump.pop(name, None)
    for name in getattr(cls, "ADDED_FIELDS", ()):
        if getattr(model, name) == cls.model_fields[name].get_default(call_default_factory=True):
            dump.pop(name, None)
    for name in cls.model_fields:
        value = getattr(model, name)
        if name not in dump:
            continue
        if isinstance(value, BaseModel):
            _versioned(value, dump[name])
        elif isinstance(value, dict):
            for key, inner in value.items():
                if isinstance(inner, BaseModel):
                    _versioned(inner, dump[name][key])
    return dump


def suite_code_version(spec: SuiteSpec, profile: str) -> str:
    """Dagster ``code_version`` of a suite's assets under ``profile``: a short hash of the spec without its
    profiles (fields added to the schema later count only when set), of ``profile``'s own selection (limit,
    seed) and samples per item, and of the loader's outside inputs (e.g. the lm-eval version). Other profiles
    do not enter it, nor ``sampling.n`` except through the samples it gives this profile."""
    payload = _versioned(spec, spec.model_dump(mode="json"))
    payload.pop("profiles", None)
    if isinstance(payload.get("sampling"), dict):
        payload["sampling"].pop("n", None)
    chosen = spec.profile(profile)
    selection = chosen.model_dump(mode="json", exclude={"samples"})
    payload["profile"] = {"selection": selection, "samples": spec.samples(profile)}
    loader = LOADERS.get(spec.loader)
    if loader.fingerprint is not None:
        fingerprint = loader.fingerprint(spec.loader_options())
        if fingerprint is not None:
            payload["loader_fingerprint"] = fingerprint
    return hash_value(payload)[:16]
