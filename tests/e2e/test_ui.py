"""The Dagster UI in a real browser: ``dagster-webserver`` on a DAGSTER_HOME where one checkpoint partition was
materialized, the lineage and the gate check as a user sees them.

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and the ``playwright`` Python package
(``pip install playwright``; its driver ships in the wheel, no ``playwright install`` needed); both are
installed by ``.ci/setup``. Without them: skipped on a developer machine, a failure under ``CI=true``.
"""

import os
import shutil
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from e2e.e2e_support import Service, make_dagster_home, service_env, wait_until, write_workspace
from evalgate_testing import tiny_specs

from eval_assets.definitions import build_definitions
from eval_assets.instance import evaluate_partition, register_checkpoint
from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: Only arc_easy, 6 items: the UI needs one materialized partition, not a meaningful gate.
LIMITS = {"arc": 6, "gsm8k": 0, "mmlu": 0}
WEBSERVER = Path(sys.executable).parent / "dagster-webserver"
SERVE_S = 120
KEYS = ("checkpoint_manifest", "predictions/arc_easy", "scores/arc_easy", "comparison/arc_easy", "promotion")
PAGE_S = 60


@dataclass
class Ui:
    base_url: str
    webserver: Service
    screenshots: Path


def _skip_or_fail(reason: str) -> None:
    """Skip on a developer machine; under ``CI=true`` a missing local dependency fails (tests/conftest.py)."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _serving(url: str, webserver: Service) -> bool:
    if not webserver.alive():
        raise AssertionError(f"dagster-webserver exited\n{webserver.log_tail()}")
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="module")
def sync_playwright():  # type: ignore[no-untyped-def]
    if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
        _skip_or_fail(f"no chromium at {CHROMIUM}: apt-get install -y chromium (.ci/setup installs it)")
    try:
        from playwright import sync_api
    except ImportError as exc:
        _skip_or_fail(f"playwright is not importable ({exc}): pip install -e '.[dev]'")
    return sync_api.sync_playwright


@pytest.fixture(scope="module")
def ui(
    sync_playwright,  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory,
    baseline_gguf: Path,
    model_cache: Path,
    data_root: Path,
) -> Iterator[Ui]:
    root = tmp_path_factory.mktemp("ui")
    home = root / "home"
    home.mkdir()
    (home / "model_cache").symlink_to(model_cache, target_is_directory=True)
    dagster_home = make_dagster_home(root / "dagster")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(dagster_home))  # the copied dagster.yaml reads its storage dir from it
        env.setenv("EVALGATE_DATA_DIR", str(data_root))
        defs = build_definitions(
            specs=tiny_specs(**LIMITS),
            evalgate=EvalgateHome(home=str(home)),
            suite_settings=SuiteSettings(profile="smoke"),
            model_runner=ModelRunner(batch_size=8),
        )
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            register_checkpoint(instance, home / "registry", baseline_gguf, name="base")
            result = evaluate_partition(defs, instance, "base", log_level="WARNING")
            assert result.success
    port = _free_port()
    webserver = Service(
        [
            str(WEBSERVER),
            "-w",
            str(write_workspace(root / "workspace.yaml")),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
        ],
        env=service_env(dagster_home=dagster_home, evalgate_home=home, limits=LIMITS, data_root=data_root),
        cwd=root,
        log=root / "webserver.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            "dagster-webserver to serve", lambda: _serving(url, webserver), deadline_s=SERVE_S,
            diagnostics=webserver.log_tail,
        )  # fmt: skip
        yield Ui(base_url=url, webserver=webserver, screenshots=root)
    finally:
        webserver.stop()


@pytest.fixture
def page(sync_playwright, ui: Ui) -> Iterator[object]:  # type: ignore[no-untyped-def]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            context.set_default_timeout(PAGE_S * 1000)
            yield context.new_page()
        finally:
            browser.close()


def _open(page, url: str) -> None:  # type: ignore[no-untyped-def]
    """Open ``url`` and dismiss the "Join the Dagster community" dialog a fresh browser profile gets."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url)
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=8_000)
    except PlaywrightTimeout:  # no dialog this time
        return
    skip.click()
    skip.wait_for(state="hidden")


def test_asset_catalog_lists_the_graph(page, ui: Ui) -> None:  # type: ignore[no-untyped-def]
    _open(page, f"{ui.base_url}/assets")
    for key in KEYS:
        page.get_by_text(key.replace("/", " / "), exact=True).first.wait_for(state="visible")
    page.screenshot(path=str(ui.screenshots / "catalog.png"), full_page=True)


def test_lineage_graph_shows_every_asset(page, ui: Ui) -> None:  # type: ignore[no-untyped-def]
    """The upstream lineage of ``promotion``: one node per asset, each linking to its asset page (the nodes are
    labelled with the key's last part, so ``predictions/arc_easy`` reads "arc_easy" inside group "evaluation")."""
    _open(page, f"{ui.base_url}/assets/promotion?view=lineage&lineageScope=upstream&lineageDepth=4")
    for key in KEYS:
        page.locator(f'a[href^="/assets/{key}?"]').first.wait_for(state="visible")
    for label in ("checkpoint_manifest", "promotion", "checkpoints", "evaluation", "gate"):
        page.get_by_text(label, exact=True).first.wait_for(state="visible")
    assert page.get_by_text("arc_easy", exact=True).count() >= 3, "predictions, scores and comparison nodes"
    page.screenshot(path=str(ui.screenshots / "lineage.png"))


def test_comparison_checks_page_shows_the_gate(page, ui: Ui) -> None:  # type: ignore[no-untyped-def]
    _open(page, f"{ui.base_url}/assets/comparison/arc_easy?view=checks")
    page.get_by_text("no_regression_vs_production").first.wait_for(state="visible")
    page.get_by_text("This is a blocking asset check").first.wait_for(state="visible")
    page.get_by_text("no production checkpoint yet", exact=False).first.wait_for(state="visible")
    page.screenshot(path=str(ui.screenshots / "checks.png"), full_page=True)
