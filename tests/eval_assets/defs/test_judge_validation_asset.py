"""``judge_validation`` and its check ``judge_agrees_with_humans``, materialized in process with real resources:
the OpenAI-compatible judge against a local ``/v1/chat/completions`` server scripted to answer from the HHH labels
(costs nothing). A judge that always picks the human-preferred answer validates (kappa 1.0); one that always says
A is a pure position bias, a tie after both orders everywhere (kappa 0), and is not validated. The stored
validation is reused (no request reaches the server) until the rubric hash or the judge id changes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from openai_chat_wire_server import ChatWireServer

from eval_assets.datapkgs import shared_datasets_dir
from eval_assets.defs.judge_validation import ASSET_KEY, CHECK_NAME, DATASET, build_judge_validation
from eval_assets.gate import load_gate_policy
from eval_assets.judge import _protocol, load_hhh
from resources.evalgate import EvalgateHome, SuiteSettings
from resources.judge import JudgeResource

PAIRS = load_hhh(shared_datasets_dir() / DATASET)
N_REQUESTS = 2 * len(PAIRS)  # both orders of every pair
_ANSWER = r"\[The start of Assistant {0}'s answer\]\n(.*?)\n\[The end of Assistant {0}'s answer\]"


def human_positions() -> dict[tuple[str, str], str]:
    """(answer in position A, answer in position B) -> the position of the human-preferred answer, for both
    orders of every HHH pair."""
    positions: dict[tuple[str, str], str] = {}
    for pair in PAIRS:
        a, b = pair.answer_a.strip(), pair.answer_b.strip()
        other = "B" if pair.human == "A" else "A"
        for key, value in (((a, b), pair.human), ((b, a), other)):
            assert positions.setdefault(key, str(value)) == value, (
                f"HHH pair {pair.pair_id} contradicts another"
            )
    return positions


def answers_human_pick(system: str, user: str) -> str:
    a = re.search(_ANSWER.format("A"), user, re.S)
    b = re.search(_ANSWER.format("B"), user, re.S)
    assert a and b, user
    position = human_positions()[(a.group(1), b.group(1))]
    return f"The answer in position {position} is what the human preferred.\nVERDICT: {position}"


def always_a(system: str, user: str) -> str:
    return "A comes first.\nVERDICT: A"


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[str, str], str]], ChatWireServer]]:
    with ChatWireServer(responder=answers_human_pick).running() as server:

        def with_responder(responder: Callable[[str, str], str]) -> ChatWireServer:
            server.responder = responder
            return server

        yield with_responder


def materialize(server: ChatWireServer, home: Path, model: str = "judge-model") -> dg.ExecuteInProcessResult:
    server.served_model = model
    judge = JudgeResource(backend="openai", base_url=server.base_url, model=model, model_hash="sha256:judge",
                          family="qwen", max_retries=0, max_parse_retries=0)  # fmt: skip
    asset, check = build_judge_validation(load_gate_policy())
    return dg.materialize(
        [asset, check],
        resources={
            "judge": judge,
            "evalgate": EvalgateHome(home=str(home)),
            "suite_settings": SuiteSettings(),
        },
    )


def outcome(result: dg.ExecuteInProcessResult) -> tuple[dict[str, Any], dg.AssetCheckEvaluation]:
    value = result.output_for_node(ASSET_KEY)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == CHECK_NAME
    return value, evaluation


def test_a_judge_that_agrees_with_the_humans_is_validated_and_reused(
    serve: Callable[[Callable[[str, str], str]], ChatWireServer], tmp_path: Path
) -> None:
    server = serve(answers_human_pick)
    value, evaluation = outcome(materialize(server, tmp_path))
    assert len(server.posts()) == N_REQUESTS == 234
    assert value["judge_id"] == "openai:judge-model" and value["dataset"] == DATASET
    assert (value["n_labelled"], value["errors"]) == (len(PAIRS), 0)
    assert value["agreement"] == 1.0 and value["kappa"] == pytest.approx(1.0)
    assert value["position_consistency"] == 1.0 and value["reused"] is False
    assert evaluation.passed and "validated" in str(evaluation.description)
    assert "not validated" not in str(evaluation.description)

    # the same judge and rubric again: the stored validation, no request to the server
    again, evaluation = outcome(materialize(server, tmp_path))
    assert len(server.posts()) == N_REQUESTS
    assert again["reused"] is True and again["kappa"] == value["kappa"] and evaluation.passed
    materialization = materialize(server, tmp_path).asset_materializations_for_node(ASSET_KEY)[0]
    assert materialization.metadata["reused"].value is True


def test_a_new_rubric_hash_or_judge_id_validates_again(
    serve: Callable[[Callable[[str, str], str]], ChatWireServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = serve(answers_human_pick)
    first, _ = outcome(materialize(server, tmp_path))
    assert len(server.posts()) == N_REQUESTS
    monkeypatch.setattr(_protocol, "RUBRIC_VERSION", _protocol.RUBRIC_VERSION + 1)  # a new rubric hash
    bumped, _ = outcome(materialize(server, tmp_path))
    assert len(server.posts()) == 2 * N_REQUESTS
    assert bumped["reused"] is False and bumped["rubric_hash"] != first["rubric_hash"]
    other, _ = outcome(materialize(server, tmp_path, model="other-judge"))  # a new judge id
    assert len(server.posts()) == 3 * N_REQUESTS
    assert other["reused"] is False and other["judge_id"] == "openai:other-judge"
    assert {body["model"] for body in server.posts()[-N_REQUESTS:]} == {"other-judge"}


def test_a_judge_that_always_says_a_is_not_validated(
    serve: Callable[[Callable[[str, str], str]], ChatWireServer], tmp_path: Path
) -> None:
    server = serve(always_a)
    value, evaluation = outcome(materialize(server, tmp_path))
    assert len(server.posts()) == N_REQUESTS
    # A in both orders names different answers: every pair is a tie, which never matches a human pick
    assert value["agreement"] == 0.0 and value["kappa"] == 0.0
    assert value["position_consistency"] == 0.0
    assert not evaluation.passed
    assert "kappa 0.000" in str(evaluation.description) and "not validated (needs > 0.7)" in str(
        evaluation.description
    )
