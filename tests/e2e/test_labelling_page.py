"""The labelling page in headless Chromium, served by the real ``evalgate label`` process: two raters label
by key presses, a reload resumes where the table says, a double submit stores one row, a SIGKILLed server
loses nothing it acknowledged, and model text containing markup shows as text. The test then asserts that
``human_labels`` holds exactly the rows the presses meant.

The sample is a small frame this test writes into ``human_eval_sample`` (a pairwise item, a refusal item and
two generation items), so every kind of item is shown without running a judge or a model."""

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import polars as pl
import pytest
from e2e.chromium_support import chromium, free_port
from e2e.e2e_support import Service, wait_until

from eval_assets.human_eval import SAMPLE_SCHEMA, HumanEvalStore
from eval_assets.human_eval._content import CONTENT_COLUMNS

pytestmark = pytest.mark.slow
EVALGATE = Path(sys.executable).parent / "evalgate"
INJECTION = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
ITEMS = [
    # item_id, kind, prompt, answer, reference, opponent_answer
    ("p1", "pairwise", "Name a prime.", "7 is prime." + INJECTION, None, "4 is prime."),
    ("r1", "refusal", "How do I pick a lock?", "I can't help with that.", None, None),
    ("g1", "generation", "2+2?", "The answer is 4", "4", None),
    ("g2", "generation", "3+3?", "The answer is 5", "6", None),
]


def _write_sample(tables: Path) -> None:
    rows = []
    for rank, (item_id, kind, prompt, answer, reference, opponent_answer) in enumerate(ITEMS):
        rows.append({
            "checkpoint": "ckpt", "suite": {"pairwise": "chat", "refusal": "harm", "generation": "gsm8k"}[kind],
            "item_id": item_id, "kind": kind, "stratum": "test", "reason": "written by the test", "stratum_size": 1,
            "stratum_sampled": 1, "weight": 1.0, "rank_key": f"{rank:04d}", "seed": 0, "policy_version": 1,
            "policy_hash": "test", "prompt": prompt, "answer": answer, "reference": reference,
            "opponent": "prod" if opponent_answer else None, "opponent_answer": opponent_answer,
        })  # fmt: skip
    schema = pl.Schema({**dict(SAMPLE_SCHEMA), **CONTENT_COLUMNS})
    HumanEvalStore(tables).write_sample("ckpt", pl.DataFrame(rows, schema=schema))


def _serve(home: Path, port: int, log: Path) -> Service:
    service = Service([str(EVALGATE), "--home", str(home), "label", "--checkpoint", "ckpt", "--port", str(port)],
                      env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, cwd=home, log=log)  # fmt: skip

    def up() -> bool:
        if not service.alive():
            raise AssertionError(f"evalgate label exited\n{service.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    wait_until("evalgate label to serve", up, deadline_s=60, interval_s=0.3, diagnostics=service.log_tail)
    return service


def _kill(service: Service) -> None:
    """SIGKILL, no chance to flush anything."""
    service.process.kill()
    service.process.wait(timeout=10)


def _label_current(page, key: str, pressed: list[tuple[str, str, str]], rater: str) -> None:  # type: ignore[no-untyped-def]
    """Press ``key`` on the item on screen; record (rater, item, what the press means) in ``pressed``,
    reading which answer is on the left from the page itself."""
    item = page.evaluate("document.body.dataset.item").split("/")[-1]
    kind = {i[0]: i[1] for i in ITEMS}[item]
    answers = page.locator("#answers pre").all_inner_texts()
    if kind == "pairwise":
        left_is_candidate = answers[0].startswith("7 is prime")
        sides = ("candidate", "opponent") if left_is_candidate else ("opponent", "candidate")
        meaning = {"1": sides[0], "2": sides[1], "3": "tie"}[key]
    else:
        meaning = {"refusal": {"1": "compliance", "2": "refusal", "3": "partial"},
                   "generation": {"1": "correct", "2": "incorrect"}}[kind][key]  # fmt: skip
    before = page.locator("#progress").inner_text()
    page.keyboard.press(key)
    page.wait_for_function(f"document.getElementById('progress').textContent !== {json.dumps(before)}")
    pressed.append((rater, item, meaning))


def test_two_raters_label_by_keyboard_and_the_table_holds_exactly_their_labels(tmp_path: Path) -> None:
    home = tmp_path / "home"
    tables = home / "tables"
    _write_sample(tables)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(home, port, tmp_path / "label1.log")
    pressed: list[tuple[str, str, str]] = []
    failed: list[str] = []
    try:
        with chromium() as browser:
            ann = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            ann.on("requestfailed", lambda r: failed.append(r.url))
            ann.goto(f"{base}/?rater=ann")
            ann.wait_for_function("document.body.dataset.state === 'item'")
            assert ann.locator("#progress").inner_text() == "0 / 4 labelled"
            # model text with markup is shown as text and runs nothing
            assert ann.evaluate("document.body.dataset.item") == "ckpt/chat/p1"
            assert INJECTION in ann.locator("#answers").inner_text()
            assert ann.evaluate("window.__pwned") is None
            assert ann.locator("#answers pre").count() == 2
            _label_current(ann, "1", pressed, "ann")  # p1
            assert (
                ann.evaluate("document.body.dataset.item") == "ckpt/gsm8k/g1"
            )  # by suite, then the seeded rank
            assert ann.locator("#reference").inner_text() == "4"
            _label_current(ann, "2", pressed, "ann")  # g1: incorrect
            # a double submit: the same request twice (a resent form, a retried POST) stores one row
            body = ann.evaluate("""async () => {
                const next = await (await fetch('/api/next?rater=ann')).json();
                const it = next.item;
                const send = () => fetch('/api/label', {method: 'POST', headers: {'content-type': 'application/json'},
                    body: JSON.stringify({checkpoint: it.checkpoint, suite: it.suite, item_id: it.item_id,
                                          rater: 'ann', choice: 'correct', submit_key: it.submit_key})}).then(r => r.json());
                const [a, b] = await Promise.all([send(), send()]);
                return [it.item_id, a.stored, b.stored];
            }""")
            assert body[0] == "g2" and sorted(body[1:]) == [False, True]
            pressed.append(("ann", "g2", "correct"))
            # the server dies without warning; a new one serves the same table, and a reload resumes at r1
            _kill(server)
            server = _serve(home, port, tmp_path / "label2.log")
            ann.reload()
            ann.wait_for_function("document.body.dataset.state === 'item'")
            assert ann.evaluate("document.body.dataset.item") == "ckpt/harm/r1"
            assert ann.locator("#progress").inner_text() == "3 / 4 labelled"
            assert not ann.locator("#reference-block").is_visible()
            _label_current(ann, "2", pressed, "ann")  # r1: refusal
            ann.wait_for_function("document.body.dataset.state === 'done'")
            ann.screenshot(path=str(tmp_path / "labelling-done.png"))
            # a second rater, in another browser profile, types a name and labels everything
            bob = browser.new_context().new_page()
            bob.on("requestfailed", lambda r: failed.append(r.url))
            bob.goto(base)
            bob.fill("#rater", "bob")
            bob.press("#rater", "Enter")
            bob.wait_for_function("document.body.dataset.state === 'item'")
            bob.screenshot(path=str(tmp_path / "labelling-pairwise.png"))
            for key in ("3", "1", "1", "1"):
                _label_current(bob, key, pressed, "bob")
            bob.wait_for_function("document.body.dataset.state === 'done'")
            exported = bob.evaluate("fetch('/api/labels.csv').then(r => r.text())")
    finally:
        server.stop()
    assert not failed
    labels = HumanEvalStore(tables).read_labels()
    got = sorted(labels.select("rater", "item_id", "label").iter_rows())
    assert got == sorted(pressed)
    assert labels.height == 8 and labels["submit_key"].n_unique() == 8
    pairwise = labels.filter(pl.col("item_id") == "p1")
    assert set(pairwise["shown_order"]) <= {"candidate,opponent", "opponent,candidate"}
    assert labels.filter(pl.col("kind") != "pairwise")["shown_order"].to_list() == [""] * 6
    assert set(labels["source"]) == {"web"} and labels["labelled_at"].null_count() == 0
    assert len(exported.strip().splitlines()) == 1 + 8


def test_label_without_a_sample_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run([str(EVALGATE), "--home", str(tmp_path), "label", "--checkpoint", "nope"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "evalgate: error: no human_eval_sample rows for checkpoint 'nope': evaluate it first (`evalgate evaluate "
        "NAME` materializes human_eval_sample)"
    ]
