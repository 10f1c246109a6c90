"""Shared fixtures: the pinned data packages, a session-wide converted copy of the real small model, and a
fresh evalgate home per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eval_assets.datapkgs import PINNED_FILES, SMOLLM2_GGUF, data_dir


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = data_dir()
    missing = [rel for rel in PINNED_FILES if not (root / rel).is_file()]
    if missing:
        pytest.skip(f"data packages not installed in {root} (missing {missing[0]}); run `evalgate data install`")
    return root


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Converted checkpoints for the whole session (GGUF dequantization costs ~20 s once)."""
    return tmp_path_factory.mktemp("model_cache")


@pytest.fixture(scope="session")
def baseline_gguf(data_root: Path) -> Path:
    return data_root / SMOLLM2_GGUF


@pytest.fixture(scope="session")
def damaged_checkpoint(baseline_gguf: Path, model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from eval_assets.demo import make_damaged_checkpoint

    return make_damaged_checkpoint(baseline_gguf, model_cache, tmp_path_factory.mktemp("ckpt") / "damaged")


@pytest.fixture
def evalgate_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "evalgate"
    monkeypatch.setenv("EVALGATE_HOME", str(home))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    yield home

