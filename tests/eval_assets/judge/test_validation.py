"""Validation against human labels: the HHH pairs, picks after both orders, kappa against statsmodels, and a
user's pairs file refused with one clear line naming the file, line and field."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa
from statsmodels.stats.inter_rater import to_table

from eval_assets.datapkgs import shared_datasets_dir
from eval_assets.judge import (
    JudgeIdentity,
    JudgeReply,
    JudgeRequest,
    LabelledPair,
    ValidationDataError,
    ValidationStore,
    load_hhh,
    load_pairs_file,
    validate,
)


class ScriptedJudge:
    """Picks the answer containing the word 'good'; says A for anything else (a position-biased fallback)."""

    identity = JudgeIdentity("test:scripted", "1", None, "test")

    def complete(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        replies = []
        for r in requests:
            a = r.user.split("[The start of Assistant A's answer]")[1].split("[The end")[0]
            b = r.user.split("[The start of Assistant B's answer]")[1].split("[The end")[0]
            letter = "A" if "good" in a else "B" if "good" in b else "A"
            replies.append(JudgeReply(text=f"because\nVERDICT: {letter}"))
        return replies


def test_hhh_has_117_pairs_with_both_label_positions() -> None:
    pairs = load_hhh(shared_datasets_dir() / "hhh_alignment")
    assert len(pairs) == 117
    assert {p.human for p in pairs} == {"A", "B"}
    assert sum(p.human == "A" for p in pairs) == 59  # alternating positions: no position shortcut


def test_picks_agreement_and_kappa_match_statsmodels(tmp_path: Path) -> None:
    pairs = [LabelledPair(str(i), "q", a, b, h) for i, (a, b, h) in enumerate([
        ("good", "bad", "A"), ("bad", "good", "B"), ("good", "bad", "A"), ("bad", "good", "A"),  # judge B, human A
        ("x", "y", "B"),  # neither: A in both orders -> the orders disagree -> tie
        ("bad", "good", "B"),
    ])]  # fmt: skip
    result = validate(ScriptedJudge(), pairs, dataset="t", cache=None)
    assert result.picks == {"0": "A", "1": "B", "2": "A", "3": "B", "4": "tie", "5": "B"}
    judge = [result.picks[p.pair_id] for p in pairs]
    human = [str(p.human) for p in pairs]
    assert result.agreement == pytest.approx(4 / 6)
    codes = {"A": 0, "B": 1, "tie": 2}
    table, _ = to_table([[codes[j], codes[h]] for j, h in zip(judge, human, strict=True)], bins=[0, 1, 2, 3])
    assert result.kappa == pytest.approx(float(sm_kappa(table).kappa))
    assert result.position_consistency == pytest.approx(5 / 6)
    store = ValidationStore(tmp_path)
    store.put(ScriptedJudge.identity, result)
    assert store.get(ScriptedJudge.identity, result.rubric_hash)["kappa"] == pytest.approx(result.kappa)  # type: ignore[index]
    assert (
        store.get(JudgeIdentity("test:scripted", "2", None, "test"), result.rubric_hash) is None
    )  # new version


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": 1, "query": "q", "answer_a": "a"}', "field `answer_b` is missing"),
        ('{"id": 1, "query": "q", "answer_a": "a", "answer_b": "b", "human": "C"}', "field `human` must be"),
        ("not json", "not a JSON object"),
    ],
)
def test_a_bad_pairs_file_names_the_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        json.dumps({"id": 0, "query": "q", "answer_a": "a", "answer_b": "b"}) + "\n" + line + "\n"
    )
    with pytest.raises(ValidationDataError, match=rf"pairs.jsonl:2: .*{message}"):
        load_pairs_file(path)


def test_repeated_ids_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    row = json.dumps({"id": "x", "query": "q", "answer_a": "a", "answer_b": "b"})
    path.write_text(row + "\n" + row + "\n")
    with pytest.raises(ValidationDataError, match=r"pairs\.jsonl:2: field `id`: 'x' repeats"):
        load_pairs_file(path)


class DyingJudge(ScriptedJudge):
    """Judges ``chunk_size`` requests at a time and dies on its third call (a killed run); counts what it saw."""

    chunk_size = 4

    def __init__(self, die_on: int | None = 3) -> None:
        self.calls = 0
        self.seen = 0
        self.die_on = die_on

    def complete(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        self.calls += 1
        if self.calls == self.die_on:
            raise KeyboardInterrupt("killed")
        assert len(requests) <= self.chunk_size
        self.seen += len(requests)
        return super().complete(requests)


def test_a_run_killed_midway_resumes_from_the_verdicts_it_cached(tmp_path: Path) -> None:
    from eval_assets.judge import JudgeCache, Pair, judge_pairs
    from eval_assets.progress import Progress, observe_progress

    pairs = [Pair(str(i), f"q{i}", "good" if i % 2 else "bad", "bad" if i % 2 else "good") for i in range(6)]
    cache = JudgeCache(tmp_path / "verdicts.sqlite")
    with pytest.raises(KeyboardInterrupt):
        judge_pairs(DyingJudge(), pairs, cache)
    # two chunks of 4 judged before the kill: their 8 verdicts are cached
    events: list[Progress] = []
    again = DyingJudge(die_on=None)
    with observe_progress(events.append):
        judgements = judge_pairs(again, pairs, cache, report_as=("cand", "chat"))
    cache.close()
    assert again.seen == 12 - 8 and again.calls == 1
    assert sum(j.cached for j in judgements) == 8 and len(judgements) == 12
    assert [j.verdict for j in judgements if j.order == "ab"] == ["opponent", "candidate"] * 3
    assert [(e.phase, e.cache_hits, e.to_compute, e.computed) for e in events] == [
        ("start", 8, 4, 0),
        ("done", 8, 4, 4),
    ]
    assert events[0].label == "chat judge verdicts" and events[0].unit == "judgements"
