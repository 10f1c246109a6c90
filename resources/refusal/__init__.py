"""Refusal classifiers behind one interface (:class:`RefusalClassifier`): ``embedded`` (the default, no network:
MiniLM embeddings + a logistic regression trained on human labels), ``string_match`` (XSTest's baseline) and
``claude`` (the Anthropic Messages API with XSTest's prompt); validation against human labels out of distribution
(:mod:`resources.refusal.validation`)."""

from resources.refusal._labels import (
    COMPLIANCE,
    ERROR,
    LABELS,
    PARTIAL,
    REFUSAL,
    Exchange,
    Label,
    RefusalClassifier,
    refused,
)

__all__ = [
    "COMPLIANCE",
    "ERROR",
    "LABELS",
    "PARTIAL",
    "REFUSAL",
    "Exchange",
    "Label",
    "RefusalClassifier",
    "refused",
]
