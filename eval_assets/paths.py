"""Where evalgate keeps its state on this machine. Resolved when called, never at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from resources.table_location import TableLocation

#: The results location when ``EvalgateHome.results_uri`` is unset (default: ``<home>/tables``).
RESULTS_URI_ENV = "EVALGATE_RESULTS_URI"


def default_home() -> Path:
    """``$EVALGATE_HOME``, else ``~/.evalgate``."""
    configured = os.environ.get("EVALGATE_HOME")
    return Path(configured).expanduser().resolve() if configured else Path.home() / ".evalgate"


@dataclass(frozen=True)
class HomeLayout:
    """The folders under one evalgate home."""

    root: Path

    @property
    def registry(self) -> Path:
        """One JSON manifest per registered checkpoint name."""
        return self.root / "registry"

    @property
    def inbox(self) -> Path:
        """Checkpoint manifest files dropped here are registered by the sensor."""
        return self.root / "inbox"

    @property
    def tables(self) -> Path:
        """The default, local results location (Delta tables: predictions, item_scores, scores, comparisons,
        gate_decisions, prediction_cache); :func:`results_location` says where they are."""
        return self.root / "tables"

    @property
    def model_cache(self) -> Path:
        """Converted checkpoints (GGUF dequantized to safetensors), keyed by model hash."""
        return self.root / "model_cache"

    @property
    def checkpoints(self) -> Path:
        """Checkpoints the demo derives (the damaged copy)."""
        return self.root / "checkpoints"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def production_pointer(self) -> Path:
        """A readable view of the current production; the truth is the history in ``gate_decisions``."""
        return self.root / "production.json"

    @property
    def production_lock(self) -> Path:
        """Held while the gate decides and moves production (serialises compare → promote per home)."""
        return self.root / "production.lock"


def overrides_dir(layout: HomeLayout, configured: str | None = None) -> Path:
    """Override records: ``configured``, else ``$EVALGATE_OVERRIDES_DIR``, else ``<home>/overrides``."""
    value = configured or os.environ.get("EVALGATE_OVERRIDES_DIR")
    return Path(value).expanduser().resolve() if value else layout.root / "overrides"


def results_location(
    layout: HomeLayout,
    uri: str | None = None,
    storage_options: Mapping[str, str] | None = None,
    secret_env: Mapping[str, str] | None = None,
) -> TableLocation:
    """Where the results tables live: ``uri``, else ``$EVALGATE_RESULTS_URI``, else ``<home>/tables``."""
    value = uri or os.environ.get(RESULTS_URI_ENV) or str(layout.tables)
    return TableLocation(value, dict(storage_options or {}), dict(secret_env or {}))
