"""The effective configuration turned into Dagster resources: one function, used by the CLI, ``dagster dev``
and the daemon alike, so that a run launched by automation uses exactly what ``evalgate evaluate`` would.

Secrets become ``dg.EnvVar(name)``: Dagster resolves them when a run starts, so the value is in no definition,
run config, tag or metadata. Sections of resources that live in their own modules (the judge, the refusal
classifier) are passed through as that resource's fields; adding one is a field in
:class:`eval_assets.config.EvalgateConfig` and a line in :data:`PASSTHROUGH`.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from typing import Any

import dagster as dg

from eval_assets.config import EffectiveConfig, SecretRef
from resources.evalgate import CodeSandbox, EvalgateHome, ModelRunner, SuiteSettings
from resources.slack import SlackAlerts

#: Resource key -> (module, class name or None for "the one ConfigurableResource the module defines").
PASSTHROUGH: dict[str, tuple[str, str | None]] = {
    "judge": ("resources.judge", "JudgeResource"),
    "refusal_classifier": ("resources.refusal_classifier", "RefusalClassifierResource"),
}
#: ``results`` fields -> the EvalgateHome fields they set.
RESULTS_FIELDS = {
    "uri": "results_uri",
    "storage_options": "results_storage_options",
    "storage_secrets": "results_storage_secrets",
}
CONFIG_DIGEST_TAG = "evalgate/config_digest"


def masked(effective: EffectiveConfig) -> dict[str, Any]:
    """The configuration as plain data, each secret as ``{"env": NAME}`` (the file's own form): safe to show."""
    return effective.config.model_dump(mode="json")


def config_digest(effective: EffectiveConfig) -> str:
    """A short content hash of the effective (masked) configuration: the same digest means the same settings."""
    canonical = json.dumps(masked(effective), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _env_var(secret: SecretRef | None) -> Any:
    return dg.EnvVar(secret.env) if secret is not None else None


def _passthrough_class(key: str) -> type[dg.ConfigurableResource] | None:
    module_name, class_name = PASSTHROUGH[key]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    if class_name:
        found: type[dg.ConfigurableResource] = getattr(module, class_name)
        return found
    defined = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, dg.ConfigurableResource)
        and value.__module__ == module_name
        and not inspect.isabstract(value)
    ]
    if len(defined) != 1:
        raise TypeError(
            f"{module_name} defines {len(defined)} resources; name the one for `{key}` in "
            "eval_assets.config_resources.PASSTHROUGH"
        )
    return defined[0]


def _passthrough(effective: EffectiveConfig, key: str) -> dg.ConfigurableResource | None:
    fields: dict[str, Any] | None = getattr(effective.config, key)
    if fields is None:
        return None
    source = effective.sources[key]
    resource = _passthrough_class(key)
    if resource is None:
        raise ValueError(f"evalgate config: {source}: field `{key}`: this evalgate has no {key} resource")
    unknown = sorted(set(fields) - set(resource.model_fields))
    if unknown:
        raise ValueError(
            f"evalgate config: {source}: field `{key}.{unknown[0]}`: not a setting of {resource.__name__} "
            f"(settings: {', '.join(sorted(resource.model_fields))})"
        )
    values = {name: _env_var(v) if isinstance(v, SecretRef) else v for name, v in fields.items()}
    try:
        return resource(**values)
    except Exception as exc:  # pydantic's ValidationError, or the resource's own check
        raise ValueError(f"evalgate config: {source}: field `{key}`: {exc}") from exc


def resources_from_config(effective: EffectiveConfig) -> dict[str, dg.ConfigurableResource]:
    """Every resource the definitions bind, built from ``effective``."""
    config = effective.config
    home_fields: dict[str, Any] = {
        "home": str(effective.home),
        "overrides_dir": _str(effective, "overrides_dir"),
    }
    for name, target in RESULTS_FIELDS.items():  # results on object storage, where EvalgateHome takes them
        value = getattr(config.results, name)
        if not value:
            continue
        if target not in EvalgateHome.model_fields:
            raise ValueError(
                f"evalgate config: {effective.sources['results.' + name]}: field `results.{name}`: this "
                f"evalgate's EvalgateHome has no `{target}` (results on object storage are not supported)"
            )
        home_fields[target] = value
    if config.production_lock_url and "production_lock_url" in EvalgateHome.model_fields:
        home_fields["production_lock_url"] = config.production_lock_url
    runner = config.model_runner
    resources: dict[str, dg.ConfigurableResource] = {
        "evalgate": EvalgateHome(**home_fields),
        "model_runner": ModelRunner(
            **runner.model_dump(exclude={"openai_api_key"}), openai_api_key=_env_var(runner.openai_api_key)
        ),
        "suite_settings": SuiteSettings(
            profile=config.suites.profile,
            profiles=dict(config.suites.profiles),
            data_dir=_str(effective, "data_dir"),
            suites_dir=_str(effective, "suites_dir"),
            grow=config.suites.grow,
        ),
        "code_sandbox": CodeSandbox(**config.sandbox.model_dump()),
        "slack": SlackAlerts(
            token=dg.EnvVar(config.slack.token.env),
            channel=config.slack.channel,
            base_url=config.slack.base_url,
            dagster_ui_url=config.slack.ui_url,
        ),
    }
    for key in PASSTHROUGH:
        built = _passthrough(effective, key)
        if built is not None:
            resources[key] = built
    return resources


def _str(effective: EffectiveConfig, name: str) -> str | None:
    path = effective.path(name)
    return str(path) if path else None
