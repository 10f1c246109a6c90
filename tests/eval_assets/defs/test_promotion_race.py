"""Two gates deciding at once, each on evidence against the same production: exactly one is promoted, in
separate processes (the lock is an flock on the home), and the other is refused because production moved."""

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eval_assets.checkpoints import CheckpointManifest
from eval_assets.defs.promotion import decide_and_move
from eval_assets.gate import CheckStatus, load_gate_policy, registered_rules
from resources.checkpoint_registry import CheckpointRegistry
from resources.evalgate import EvalgateHome

POLICY = load_gate_policy()
A_HASH = "sha256:" + "a" * 64


def _register(home: Path) -> None:
    registry = CheckpointRegistry(home / "registry")
    for name, ch in (("a", "a"), ("b", "b"), ("c", "c")):
        registry.add(
            CheckpointManifest(
                name=name,
                path=f"/w/{name}",
                format="hf",
                backend="transformers",
                model_hash="sha256:" + ch * 64,
                tokenizer_hash="sha256:" + "f" * 64,
                source="test",
                registered_at=datetime.now(UTC).isoformat(),
            )
        )


def _statuses_against_a() -> list[CheckStatus]:
    """Passing, current evidence for a candidate, compared against production `a`."""
    return [
        CheckStatus(
            suite="arc_easy",
            check="no_regression_vs_production",
            rule="no_regression_vs_production",
            found=True,
            blocking_failure=False,
            current=True,
            reason="no regression",
            outcome="pass",
            code_version="v",
            expected_code_version="v",
            policy_hash=POLICY.policy_hash,
            production="a",
            production_model_hash=A_HASH,
            compares_to_production=True,
        )
    ]


def _gate(
    home: str,
    candidate: str,
    start: "multiprocessing.synchronize.Barrier",
    out: "multiprocessing.Queue[tuple[str, str, str]]",
) -> None:
    evalgate = EvalgateHome(home=home)
    start.wait(timeout=30)
    decision, _ = decide_and_move(
        evalgate,
        candidate,
        POLICY,
        set(registered_rules()),
        run_id=f"run-{candidate}",
        read_statuses=_statuses_against_a,
    )
    out.put((candidate, decision.outcome, decision.reason))


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_promotions_against_one_production_promote_exactly_one(
    tmp_path: Path, round_: int
) -> None:
    home = tmp_path / "home"
    _register(home)
    evalgate = EvalgateHome(home=str(home))
    evalgate.ledger().move(
        checkpoint="a",
        model_hash=A_HASH,
        expected_predecessor=None,
        authority_kind="baseline",
        authority="test",
        actor="test",
        reason="baseline",
        policy_version=POLICY.version,
        policy_hash=POLICY.policy_hash,
        run_id="t",
    )
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    out: multiprocessing.Queue[tuple[str, str, str]] = context.Queue()
    gates = [context.Process(target=_gate, args=(str(home), name, start, out)) for name in ("b", "c")]
    for gate in gates:
        gate.start()
    results = sorted(out.get(timeout=120) for _ in gates)
    for gate in gates:
        gate.join(timeout=60)
    outcomes = [outcome for _, outcome, _ in results]
    assert sorted(outcomes) == ["blocked", "promoted"], results
    winner = next(name for name, outcome, _ in results if outcome == "promoted")
    loser_reason = next(reason for _, outcome, reason in results if outcome == "blocked")
    assert f"compared against a ({A_HASH}), but production is now {winner}" in loser_reason
    head = evalgate.ledger().head()
    assert head is not None and (head.checkpoint, head.predecessor, head.sequence) == (winner, "a", 2)
    assert len(evalgate.ledger().moves()) == 2, "one move per race, on a single chain"
