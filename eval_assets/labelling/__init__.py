"""The labelling page served by ``evalgate label`` (Starlette + uvicorn)."""

from .app import KEYS, Labelling, build_app, shown_order

__all__ = ["KEYS", "Labelling", "build_app", "shown_order"]
