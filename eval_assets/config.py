"""One typed configuration for every resource: ``evalgate.yaml``, environment overrides, command-line flags.

Where it comes from, highest first: command-line flags, then ``EVALGATE_*`` environment variables, then the
config file, then the defaults below. The file is ``$EVALGATE_CONFIG``, else ``<home>/evalgate.yaml`` (the home
from ``--home``, else ``$EVALGATE_HOME``, else ``~/.evalgate``); a missing default file is no error, a missing
``$EVALGATE_CONFIG`` is. Every leaf value records its source (:attr:`EffectiveConfig.sources`), which
``evalgate config show`` prints.

Environment names: a top-level field ``x`` is ``EVALGATE_X`` (``EVALGATE_HOME``, ``EVALGATE_SUITES_DIR``,
``EVALGATE_POLICY``, ``EVALGATE_OVERRIDES_DIR``, ``EVALGATE_DATA_DIR``); a section's field is
``EVALGATE_<SECTION>__<FIELD>`` (``EVALGATE_MODEL_RUNNER__BATCH_SIZE=4``, ``EVALGATE_SANDBOX__BACKEND=modal``);
mappings and lists are given as YAML (``EVALGATE_SUITES__PROFILES='{arc_easy: full}'``). A few short names
predate this file and stay: ``EVALGATE_PROFILE``, ``EVALGATE_SLACK_CHANNEL``, ``EVALGATE_SLACK_BASE_URL``,
``EVALGATE_UI_URL``.

Secrets are never values here: a secret field names the environment variable that holds it
(``openai_api_key: {env: OPENAI_API_KEY}``), and the resources receive ``dg.EnvVar(name)``, which Dagster
resolves when a run starts. So neither the file, nor ``config show``, nor the definitions, run config or
metadata ever hold the value. A literal string where a secret belongs is refused, and the refusal does not
repeat what was written. Secret fields are not overridable by ``EVALGATE_*`` variables (set the named variable
itself), so a secret pasted into an override variable is never mistaken for a name and printed.

Nothing here reads the environment at import: :func:`load_config` reads it when called (by the CLI, and by the
``@dg.definitions`` loader when Dagster loads the code location).
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

#: Bump when a field is renamed or removed, or its meaning changes; a file of another version is refused.
CONFIG_VERSION = 1
CONFIG_ENV = "EVALGATE_CONFIG"
CONFIG_FILE = "evalgate.yaml"
ENV_PREFIX = "EVALGATE_"
#: Names that predate the config file, kept working (field path -> variable).
LEGACY_ENV = {
    "suites.profile": "EVALGATE_PROFILE",
    "slack.channel": "EVALGATE_SLACK_CHANNEL",
    "slack.base_url": "EVALGATE_SLACK_BASE_URL",
    "slack.ui_url": "EVALGATE_UI_URL",
    "results.uri": "EVALGATE_RESULTS_URI",
}
#: Top-level settings that are paths (relative ones in the file are relative to the file).
PATH_SETTINGS = ("home", "data_dir", "suites_dir", "policy", "overrides_dir")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
#: storage option keys that carry credentials: refused in the file (deltalake reads them from the environment).
_SECRET_OPTION = re.compile(
    r"(secret|password|token|session|credential|private|sas|account_key|access_key)", re.I
)


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file (or variable) and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """A secret, by the name of the environment variable holding it."""

    env: str = Field(description="the environment variable that holds the secret")

    @field_validator("env")
    @classmethod
    def _an_env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError("must be an environment variable name (A-Z, 0-9, _), e.g. OPENAI_API_KEY")
        return value

    def is_set(self, environ: Mapping[str, str] | None = None) -> bool:
        return bool((os.environ if environ is None else environ).get(self.env))


def _secret(value: Any) -> Any:
    """A secret given as a plain string is refused without echoing it."""
    if isinstance(value, str):
        raise ValueError(
            "a secret is named by its environment variable, {env: NAME}, never written in the config "
            "(the value given is not repeated here)"
        )
    return value


class SuitesSection(_Strict):
    profile: str = Field(default="smoke", description="the profile every suite runs (smoke or full)")
    profiles: dict[str, str] = Field(
        default_factory=dict, description="per-suite profiles, overriding `profile` (suite name -> profile)"
    )
    grow: bool = Field(
        default=False, description="an inconclusive regression gate evaluates more items in planned stages"
    )


class ModelRunnerSection(_Strict):
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(default=8, gt=0)
    openai_base_url: str | None = None
    openai_api_key: SecretRef | None = Field(default=None, description="{env: NAME} of the server's API key")
    openai_model: str | None = None
    openai_model_hash: str | None = None
    openai_tokenizer: str | None = None
    vllm_gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)
    vllm_device: str = "cuda"
    vllm_max_model_len: int | None = Field(default=None, gt=0)
    vllm_tensor_parallel_size: int = Field(default=1, gt=0)

    _secret_key = field_validator("openai_api_key", mode="before")(_secret)


class SandboxSection(_Strict):
    backend: Literal["local", "modal"] = Field(default="local", description="where model-written code runs")
    workers: int | None = Field(
        default=None, gt=0, description="parallel sandboxes (default: by CPU and memory)"
    )
    modal_app_name: str = "evalgate-sandboxes"
    modal_cpu: float = Field(default=1.0, gt=0, description="cores requested and capped per Modal sandbox")
    modal_region: str | None = None


def _secret_fields(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """A passed-through section's secrets (keys like ``api_key``, ``token``) only as ``{env: NAME}``."""
    if section is None:
        return None
    checked = dict(section)
    for key, value in section.items():
        if _SECRET_OPTION.search(key) or key.endswith("api_key"):
            if isinstance(value, str):
                raise ValueError(
                    f"{key}: a secret is named by its environment variable, {{env: NAME}}, never written in the "
                    "config (the value given is not repeated here)"
                )
            checked[key] = SecretRef.model_validate(value) if value is not None else None
    return checked


class ResultsSection(_Strict):
    uri: str | None = Field(
        default=None,
        description="where the Delta tables live: a local path or s3://, gs://, az:// (default <home>/tables)",
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="deltalake storage options without credentials (endpoint, region, …); credentials come "
        "from the provider's own environment variables",
    )

    storage_secrets: dict[str, str] = Field(
        default_factory=dict,
        description="storage option -> the environment variable holding its value (read when a run starts)",
    )

    @field_validator("storage_secrets")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for option, name in value.items():
            if not _ENV_NAME.match(name):
                raise ValueError(
                    f"{option}: must name an environment variable (A-Z, 0-9, _), not hold a value"
                )
        return value

    @field_validator("storage_options")
    @classmethod
    def _no_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if _SECRET_OPTION.search(key):
                raise ValueError(
                    f"{key!r} is a credential: set it in the environment (e.g. AWS_SECRET_ACCESS_KEY), which "
                    "deltalake reads, or name its variable in `results.storage_secrets`; not in the config"
                )
        return value


class SlackSection(_Strict):
    channel: str = "#evalgate-alerts"
    base_url: str = "https://slack.com/api/"
    ui_url: str = Field(default="http://127.0.0.1:3000", description="the Dagster UI the alerts link into")
    token: SecretRef = SecretRef(env="SLACK_BOT_TOKEN")

    _secret_token = field_validator("token", mode="before")(_secret)


class EvalgateConfig(_Strict):
    """The whole configuration. Sections hold the settings of one resource each."""

    version: int = CONFIG_VERSION
    home: str | None = Field(default=None, description="the evalgate home (default ~/.evalgate)")
    data_dir: str | None = Field(
        default=None, description="the data packages (default ~/.cache/evalgate/data)"
    )
    suites_dir: str | None = Field(
        default=None, description="your own suite specs, besides the built-in ones"
    )
    policy: str | None = Field(
        default=None, description="the gate policy file (default: the packaged gate.yaml)"
    )
    overrides_dir: str | None = Field(
        default=None, description="committed override records (<home>/overrides)"
    )
    production_lock_url: str | None = Field(
        default=None,
        description="PostgreSQL server of the production lock, for hosts sharing results (no password: "
        "PGPASSWORD or ~/.pgpass)",
    )
    suites: SuitesSection = SuitesSection()
    model_runner: ModelRunnerSection = ModelRunnerSection()
    sandbox: SandboxSection = SandboxSection()
    results: ResultsSection = ResultsSection()
    slack: SlackSection = SlackSection()
    judge: dict[str, Any] | None = Field(
        default=None, description="fields of the judge resource (resources/judge.py), passed through"
    )
    refusal_classifier: dict[str, Any] | None = Field(
        default=None, description="fields of the refusal classifier resource, passed through"
    )

    _secrets_of_sections = field_validator("judge", "refusal_classifier")(_secret_fields)

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != CONFIG_VERSION:
            raise ValueError(f"this evalgate reads config version {CONFIG_VERSION}, not {value}")
        return value


#: Sections that are one model each (their fields are the leaves); the rest of the top level are leaves.
SECTIONS: dict[str, type[BaseModel]] = {
    name: info.annotation
    for name, info in EvalgateConfig.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
}


def leaf_paths() -> list[str]:
    """Every configurable value's dotted path, in the order ``config show`` prints them."""
    paths: list[str] = []
    for name in EvalgateConfig.model_fields:
        section = SECTIONS.get(name)
        if section is None:
            paths.append(name)
        else:
            paths.extend(f"{name}.{f}" for f in section.model_fields)
    return paths


def _annotation(path: str) -> Any:
    head, _, tail = path.partition(".")
    model: type[BaseModel] = SECTIONS[head] if tail else EvalgateConfig
    return model.model_fields[tail or head].annotation


def is_secret(path: str) -> bool:
    annotation = _annotation(path)
    return SecretRef in (annotation, *typing.get_args(annotation))


def env_names(path: str) -> list[str]:
    """The environment variables that set ``path`` (none for a secret: set the variable it names; none for the
    file's own ``version``, which a stray ``$EVALGATE_VERSION`` must not change)."""
    if path == "version" or is_secret(path):
        return []
    names = [ENV_PREFIX + path.upper().replace(".", "__")]
    if path in LEGACY_ENV:
        names.append(LEGACY_ENV[path])
    return names


def _structured(annotation: Any) -> bool:
    """Whether a value of this type is given in the environment as YAML (a mapping or a list)."""
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    return any(typing.get_origin(a) in (dict, list) or a in (dict, list) for a in options)


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    head, _, tail = path.partition(".")
    if not tail:
        tree[head] = value
        return
    section = tree.setdefault(head, {})
    if not isinstance(section, dict):  # the file gave a scalar where a section belongs: validation says so
        return
    section[tail] = value


def _describe(source: str, error: ValidationError, *, env_for: Mapping[str, str] | None = None) -> str:
    """One line per problem naming the file (or variable) and the field; never the input value."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "<top level>"
        origin = (env_for or {}).get(_leaf_of(where), source)
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{origin}: field `{where}`: {message}")
    return "evalgate config: " + "\n  ".join(lines)


def _leaf_of(where: str) -> str:
    parts = where.split(".")
    return ".".join(parts[:2]) if parts[0] in SECTIONS else parts[0]


@dataclass(frozen=True)
class EffectiveConfig:
    """The validated configuration, where each leaf came from, and the file read (if any)."""

    config: EvalgateConfig
    sources: dict[str, str]
    file: Path | None
    environ: Mapping[str, str] = field(repr=False, default_factory=dict)

    def value(self, path: str) -> Any:
        head, _, tail = path.partition(".")
        value = getattr(self.config, head)
        return getattr(value, tail) if tail else value

    @property
    def home(self) -> Path:
        return self.path("home") or Path.home() / ".evalgate"

    def path(self, name: str) -> Path | None:
        """A configured path (one of :data:`PATH_SETTINGS`), resolved: relative paths in the file are relative to
        the file, the others to the working directory."""
        if name not in PATH_SETTINGS:
            raise KeyError(f"{name} is not a path setting ({', '.join(PATH_SETTINGS)})")
        value = getattr(self.config, name)
        if not value:
            return None
        candidate = Path(value).expanduser()
        if not candidate.is_absolute() and self.file is not None and self.sources[name].startswith("file"):
            candidate = self.file.parent / candidate
        return candidate.resolve()

    def profile_for(self, suite: str) -> str:
        return self.config.suites.profiles.get(suite, self.config.suites.profile)

    def shown(self) -> list[tuple[str, str, str]]:
        """(path, value, source) for every leaf; secrets as their variable's name and whether it is set."""
        rows = []
        for path in leaf_paths():
            value = self.value(path)
            if isinstance(value, SecretRef):
                text = f"${value.env} ({'set' if value.is_set(self.environ) else 'not set'})"
            elif isinstance(value, BaseModel):
                text = yaml.safe_dump(value.model_dump(), default_flow_style=True).strip()
            elif isinstance(value, dict):
                plain = {k: f"${v.env}" if isinstance(v, SecretRef) else v for k, v in value.items()}
                text = yaml.safe_dump(plain, default_flow_style=True).strip() if plain else "{}"
            else:
                text = "null" if value is None else str(value)
            rows.append((path, text, self.sources[path]))
        return rows


def config_file(environ: Mapping[str, str], home_flag: str | None = None) -> tuple[Path, bool]:
    """The config file to read and whether it must exist (only a file named by ``$EVALGATE_CONFIG`` must)."""
    named = environ.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser().resolve(), True
    home = home_flag or environ.get(ENV_PREFIX + "HOME")
    root = Path(home).expanduser().resolve() if home else Path.home() / ".evalgate"
    return root / CONFIG_FILE, False


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"evalgate config: {path}: cannot read it ({exc.strerror})") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"evalgate config: {path}: not valid YAML: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"evalgate config: {path}: must be a YAML mapping, got {type(raw).__name__}")
    return raw


def _env_layer(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Overrides from the environment: the nested values and, per leaf, the variable that set it."""
    tree: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in leaf_paths():
        for name in env_names(path):  # the first name set wins: the systematic one over a legacy alias
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            value: Any = raw
            if _structured(_annotation(path)):
                try:
                    value = yaml.safe_load(raw)
                except yaml.YAMLError as exc:
                    raise ConfigError(f"evalgate config: ${name}: not valid YAML: {exc}") from exc
            _set(tree, path, value)
            origin[path] = f"env {name}"
            break
    return tree, origin


def _merge(base: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key in SECTIONS:
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_config(
    flags: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> EffectiveConfig:
    """The effective configuration. ``flags`` maps leaf paths (``"suites.profile"``) to values given on the
    command line (``None`` means not given); ``environ`` defaults to ``os.environ``, read now."""
    environ = dict(os.environ if environ is None else environ)
    given = {path: value for path, value in (flags or {}).items() if value is not None}
    unknown = sorted(set(given) - set(leaf_paths()))
    if unknown:
        raise ConfigError(f"evalgate config: unknown setting(s) {', '.join(unknown)}")
    path, required = config_file(environ, given.get("home"))
    file_data: dict[str, Any] = {}
    if path.is_file():
        file_data = _read_file(path)
    elif required:
        raise ConfigError(
            f"evalgate config: {path}: no such file (named by ${CONFIG_ENV}); create it or unset {CONFIG_ENV}"
        )
    source_file = path if path.is_file() else None
    if not required and "home" in file_data:
        raise ConfigError(
            f"evalgate config: {path}: field `home`: this file is found through the home it would set; set "
            f"`home` only in a file named by ${CONFIG_ENV}, or use --home / $EVALGATE_HOME"
        )
    try:
        EvalgateConfig.model_validate(file_data)
    except ValidationError as exc:
        raise ConfigError(_describe(str(path), exc)) from exc
    env_tree, env_origin = _env_layer(environ)
    merged = _merge(file_data, env_tree)
    try:
        EvalgateConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(str(path), exc, env_for=env_origin)) from exc
    flag_tree: dict[str, Any] = {}
    for leaf, value in given.items():
        _set(flag_tree, leaf, value)
    try:
        config = EvalgateConfig.model_validate(_merge(merged, flag_tree))
    except ValidationError as exc:
        raise ConfigError(_describe("command line", exc)) from exc
    sources: dict[str, str] = {}
    for leaf in leaf_paths():
        head, _, tail = leaf.partition(".")
        section = file_data.get(head)
        in_file = (head in file_data) if not tail else isinstance(section, dict) and tail in section
        if leaf in given:
            sources[leaf] = "flag"
        elif leaf in env_origin:
            sources[leaf] = env_origin[leaf]
        elif in_file:
            sources[leaf] = f"file {path}"
        else:
            sources[leaf] = "default"
    return EffectiveConfig(config=config, sources=sources, file=source_file, environ=environ)
