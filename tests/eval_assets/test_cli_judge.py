"""``evalgate judge validate``: picks after both orders written as CSV, agreement and kappa printed, bad input
refused with one line. Driven with the Anthropic judge against the local Messages wire server (fast); the embedded
judge is exercised by the pairwise kind's end-to-end test."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from anthropic_wire_server import AnthropicWireServer

from eval_assets.cli import main
from eval_assets.config import CONFIG_VERSION


def judge_says(user: str) -> str:
    a = re.search(r"Assistant A's answer\]\n(.*?)\n\[The end", user, re.S)
    assert a is not None
    return "A has the fact.\nVERDICT: A" if "fact" in a.group(1) else "B has the fact.\nVERDICT: B"


@pytest.fixture
def server() -> Iterator[AnthropicWireServer]:
    with AnthropicWireServer(responder=judge_says).running() as running:
        yield running


@pytest.fixture
def configured(tmp_path: Path, server: AnthropicWireServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "evalgate.yaml"
    config.write_text(
        json.dumps({"version": CONFIG_VERSION, "judge": {"base_url": server.base_url, "use_batches": False}})
    )
    monkeypatch.setenv("EVALGATE_CONFIG", str(config))
    monkeypatch.setenv("EVALGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    return tmp_path


def test_validate_writes_picks_and_prints_kappa(configured: Path, server: AnthropicWireServer,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    rows = [
        {"id": "1", "query": "q1", "answer_a": "the fact", "answer_b": "nonsense", "human": "A"},
        {"id": "2", "query": "q2", "answer_a": "nonsense", "answer_b": "the fact", "human": "B"},
        {
            "id": "3",
            "query": "q3",
            "answer_a": "the fact",
            "answer_b": "a fact too",
            "human": "B",
        },  # both: tie
        {"id": "4", "query": "q4", "answer_a": "nothing", "answer_b": "the fact", "human": "A"},
    ]
    pairs = configured / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = configured / "picks.csv"
    assert main(["judge", "validate", "--pairs", str(pairs), "--judge", "anthropic", "--out", str(out)]) == 0
    with out.open() as handle:
        picks = {r["id"]: r["pick"] for r in csv.DictReader(handle)}
    assert picks == {"1": "A", "2": "B", "3": "tie", "4": "B"}
    assert len(server.posts("/v1/messages")) == 8
    printed = capsys.readouterr().out
    assert "agreement 50.0%" in printed and "Cohen's kappa" in printed


def test_a_bad_row_is_one_line_naming_file_line_and_field(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = configured / "pairs.jsonl"
    pairs.write_text(json.dumps({"id": "1", "query": "q", "answer_a": "a"}) + "\n")
    assert main(["judge", "validate", "--pairs", str(pairs), "--out", str(configured / "o.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pairs.jsonl:1: field `answer_b` is missing" in err
