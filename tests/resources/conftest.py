"""The real small model, shared by the backend tests: a converted SmolLM2 directory and the transformers
backend on it (CPU, fp32), whose numbers the other backends must reproduce."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eval_assets.hashing import model_hash
from resources.runners.base import CheckpointRef


@pytest.fixture(scope="session")
def smollm2_dir(baseline_gguf: Path, model_cache: Path) -> Path:
    from resources.runners.transformers_backend import ensure_loadable_dir

    ref = CheckpointRef(
        name="smollm2", path=baseline_gguf, format="gguf", model_hash=model_hash(baseline_gguf)
    )
    return ensure_loadable_dir(ref, model_cache)


@pytest.fixture(scope="session")
def reference(smollm2_dir: Path, model_cache: Path) -> Iterator[Any]:
    """The transformers backend on CPU in fp32: the numbers the other backends must reproduce."""
    from resources.runners.transformers_backend import TransformersBackend

    ref = CheckpointRef(name="smollm2", path=smollm2_dir, format="hf", model_hash="sha256:test")
    backend = TransformersBackend(ref, cache_dir=model_cache, device="cpu", dtype="float32", batch_size=4)
    yield backend
    backend.close()
