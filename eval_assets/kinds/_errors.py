"""Errors the components raise (no imports: spec validation and every component module use them)."""

from __future__ import annotations


class SpecFieldError(ValueError):
    """A spec field a component refuses: ``loc`` is the field's path in the spec (``("data", "fields",
    "choices")``), ``message`` says what is wrong and what to write instead."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(f"field `{'.'.join(str(part) for part in loc)}`: {message}")
        self.loc = loc
        self.message = message


class MalformedPredictionError(ValueError):
    """A cached or fresh prediction cannot be read: reported with its location, never scored as wrong."""


def spec_error(loc: tuple[str | int, ...], message: str, value: object = None) -> Exception:
    """A pydantic ``ValidationError`` at ``loc`` of a suite spec (raised inside the spec's validators, pydantic
    reports it at that location, and the YAML loader names the file and the field)."""
    from pydantic import ValidationError
    from pydantic_core import InitErrorDetails, PydanticCustomError

    detail = InitErrorDetails(
        type=PydanticCustomError("suite_spec", "{message}", {"message": message}), loc=loc, input=value
    )
    return ValidationError.from_exception_data("SuiteSpec", [detail])


def rerooted(prefix: tuple[str | int, ...], error: Exception) -> Exception:
    """A component model's ``ValidationError`` with every location put under ``prefix`` (e.g. ``data.fields``)."""
    from pydantic import ValidationError
    from pydantic_core import InitErrorDetails, PydanticCustomError

    if not isinstance(error, ValidationError):
        return spec_error(prefix, str(error))
    details = [
        InitErrorDetails(
            type=PydanticCustomError("suite_spec", "{message}", {"message": problem["msg"]}),
            loc=prefix + tuple(problem["loc"]),
            input=problem.get("input"),
        )
        for problem in error.errors()
    ]
    return ValidationError.from_exception_data("SuiteSpec", details)
