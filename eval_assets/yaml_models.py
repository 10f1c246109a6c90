"""YAML files validated by pydantic models, with errors that name the file and the field."""

from __future__ import annotations

from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(source: str, what: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid {what}"]
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "<top level>"
        lines.append(f"  field `{where}`: {problem['msg']}")
    return "\n".join(lines)


def parse_yaml_model(model: type[M], text: str, *, source: str, what: str, error: type[ValueError]) -> M:
    """Parse ``text`` as YAML into ``model``; any problem raises ``error`` naming ``source`` and the field."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise error(f"{source}: a {what} must be a YAML mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(describe_validation_error(source, what, exc)) from exc
