"""The ``refusal_classifier`` Dagster resource: which refusal classifier labels completions, and its validation
against human labels. Backends (:mod:`resources.refusal`): ``embedded`` (default, no network), ``string_match``
(XSTest's baseline), ``claude`` (the Anthropic Messages API through the official SDK)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from resources.refusal._labels import RefusalClassifier
from resources.refusal.validation import ValidationReport, cached_validation, labelled_data_hash, validate

Backend = Literal["embedded", "string_match", "claude"]
BACKENDS: tuple[Backend, ...] = ("embedded", "string_match", "claude")
DEFAULT_CLAUDE_MODEL = "claude-sonnet-4-5"


def build_classifier(backend: str, *, cache_dir: Path | None = None, data_root: Path | None = None,
                     claude_model: str = DEFAULT_CLAUDE_MODEL, api_key: str | None = None,
                     base_url: str | None = None) -> RefusalClassifier:  # fmt: skip
    """The classifier named ``backend`` (one of :data:`BACKENDS`); an unknown name is refused with the choices."""
    if backend == "embedded":
        from resources.refusal.embedded import EmbeddedClassifier

        return EmbeddedClassifier(cache_dir=cache_dir, data_root=data_root)
    if backend == "string_match":
        from resources.refusal.string_match import StringMatchClassifier

        return StringMatchClassifier()
    if backend == "claude":
        from resources.refusal.claude import ClaudeClassifier

        return ClaudeClassifier(model=claude_model, api_key=api_key, base_url=base_url)
    raise ValueError(f"unknown refusal classifier {backend!r}; choose one of {', '.join(BACKENDS)}")


def validation_of(
    classifier: RefusalClassifier, *, cache_dir: Path, data_root: Path | None = None
) -> ValidationReport:
    """``classifier``'s out-of-distribution validation, computed once per (classifier, labelled data)."""
    from resources.refusal.embedded import EmbeddedClassifier

    def compute() -> ValidationReport:
        if isinstance(classifier, EmbeddedClassifier):
            return validate(
                classifier,
                retrain=lambda sources: EmbeddedClassifier(sources, cache_dir=cache_dir, data_root=data_root),
                data_root=data_root,
                recipe="embedded recipe re-trained per fold on the other sources",
                provenance=classifier.provenance,
            )
        return validate(classifier, data_root=data_root, recipe="not trained on the labelled sets")

    return cached_validation(cache_dir, classifier.id, labelled_data_hash(data_root), compute)


class RefusalClassifierResource(dg.ConfigurableResource):
    """Labels completions as compliance / refusal / partial. ``backend``: ``embedded`` (default), ``string_match``
    or ``claude`` (``anthropic_api_key``, e.g. ``dg.EnvVar("ANTHROPIC_API_KEY")``; ``anthropic_base_url`` for a
    proxy). ``cache_dir``: the trained classifier and validation reports (default ``~/.cache/evalgate/refusal_classifier``)."""

    backend: Backend = "embedded"
    cache_dir: str | None = None
    data_dir: str | None = Field(default=None, description="the data packages (default: evalgate's data dir)")
    claude_model: str = DEFAULT_CLAUDE_MODEL
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None

    def cache_path(self) -> Path:
        from resources.refusal.embedded import default_cache_dir

        return Path(self.cache_dir).expanduser().resolve() if self.cache_dir else default_cache_dir()

    def _data_root(self) -> Path | None:
        return Path(self.data_dir).expanduser().resolve() if self.data_dir else None

    def classifier(self) -> RefusalClassifier:
        return build_classifier(
            self.backend, cache_dir=self.cache_path(), data_root=self._data_root(), claude_model=self.claude_model,
            api_key=self.anthropic_api_key, base_url=self.anthropic_base_url,
        )  # fmt: skip

    def validation(self, classifier: RefusalClassifier | None = None) -> ValidationReport:
        return validation_of(
            classifier or self.classifier(), cache_dir=self.cache_path(), data_root=self._data_root()
        )
