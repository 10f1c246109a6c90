"""The ``evalgate`` console script end to end, as a user runs it: a fresh home, ``DAGSTER_HOME`` unset.

No model is loaded here: registering hashes the weights, nothing more.
"""

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

pytestmark = pytest.mark.slow

EVALGATE = Path(sys.executable).parent / "evalgate"
#: Every CLI call must finish well inside this (a register hashes ~100 MB).
CLI_DEADLINE_S = 120

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cli(home: Path, tmp_path: Path) -> Cli:
    if not EVALGATE.is_file():
        pytest.skip(f"the evalgate console script is not installed at {EVALGATE} (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "EVALGATE_HOME")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EVALGATE), "--home", str(home), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=CLI_DEADLINE_S,
            check=False,
        )

    return run


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _partitions(home: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The checkpoint partitions in the Dagster instance the CLI created under ``<home>/dagster``."""
    dagster_home = home / "dagster"
    assert (dagster_home / "dagster.yaml").is_file(), "the CLI copies the repository's dagster.yaml"
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))  # dagster.yaml reads its storage dir from it
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return sorted(instance.get_dynamic_partitions("checkpoints"))


def _registered(home: Path) -> list[str]:
    registry = home / "registry"
    return sorted(p.stem for p in registry.glob("*.json")) if registry.is_dir() else []


def _other_weights(tmp_path: Path) -> Path:
    """A GGUF file that hashes differently from the baseline (registration parses and hashes; it never loads)."""
    from weights_testing import tiny_gguf

    return tiny_gguf(tmp_path / "other.gguf", "other")


def test_register_prints_the_hash_and_is_idempotent(
    cli: Cli, home: Path, baseline_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _sha256(baseline_gguf)
    first = cli("register", str(baseline_gguf), "--name", "base")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("registered: base "), first.stdout
    assert expected in first.stdout
    again = cli("register", str(baseline_gguf), "--name", "base", "--hash", expected)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("already registered: base "), again.stdout
    assert _registered(home) == ["base"]
    assert _partitions(home, monkeypatch) == ["base"]


def test_same_name_for_other_weights_is_refused_and_registers_nothing(
    cli: Cli, home: Path, baseline_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("register", str(baseline_gguf), "--name", "base").returncode == 0
    manifest_before = (home / "registry" / "base.json").read_bytes()
    other = _other_weights(tmp_path)

    result = cli("register", str(other), "--name", "base")

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message.startswith("evalgate: error: ")
    assert "'base' is already registered for other weights" in message
    assert _sha256(baseline_gguf) in message and _sha256(other) in message, "names both hashes"
    assert "choose a new name" in message, "says what to do"
    assert "Traceback" not in result.stderr
    assert (home / "registry" / "base.json").read_bytes() == manifest_before
    assert _registered(home) == ["base"]
    assert _partitions(home, monkeypatch) == ["base"]


def test_missing_path_fails_clearly(
    cli: Cli, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    result = cli("register", str(missing), "--name", "ghost")
    assert result.returncode == 2
    message = result.stderr.strip()
    assert message.startswith("evalgate: error: ") and f"not found at {missing}" in message
    assert "Traceback" not in message
    assert _registered(home) == []
    assert _partitions(home, monkeypatch) == []


def test_hash_mismatch_fails_clearly(
    cli: Cli, home: Path, baseline_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _other_weights(tmp_path)
    declared = _sha256(baseline_gguf)
    result = cli("register", str(other), "--name", "candidate", "--hash", declared)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert message.startswith("evalgate: error: checkpoint 'candidate'")
    assert f"hashes to {_sha256(other)}" in message and f"declares {declared}" in message
    assert "Nothing was registered" in message and "Traceback" not in message
    assert _registered(home) == []
    assert _partitions(home, monkeypatch) == []


def test_promote_unknown_baseline_fails_clearly(cli: Cli, home: Path) -> None:
    result = cli("promote", "--baseline", "nope")
    assert result.returncode == 2
    message = result.stderr.strip()
    assert message.startswith("evalgate: error: checkpoint 'nope' is not registered")
    assert "evalgate register PATH --name nope" in message, "says what to do"
    assert not (home / "production.json").exists()


def test_report_on_an_empty_home(cli: Cli, home: Path) -> None:
    """Nothing to report is said in one line, with where to start, and exit 1 (tests/e2e/test_console.py has
    the other user errors)."""
    result = cli("report")
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"evalgate: nothing to report: no checkpoint is registered in {home}; start with "
        "`evalgate register PATH --name NAME` then `evalgate evaluate NAME` (or `evalgate demo`)"
    ]
