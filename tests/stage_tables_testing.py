"""Rows of the tables the judge and red-team stages write, built by tests that need them without running a
judge (importable: pytest puts tests/ on sys.path)."""

import polars as pl


def judge_frame(checkpoint: str, suite: str, opponent: str, pairs: list[tuple[str, str]]) -> pl.DataFrame:
    """``judge_verdicts`` rows as the pairwise stage writes them: per prompt an "ab" row (candidate shown
    first, as A) and a "ba" row; ``position`` is the side the verdict picked."""
    rows = []
    for i, pair in enumerate(pairs):
        for order, verdict in zip(("ab", "ba"), pair, strict=True):
            first = "candidate" if order == "ab" else "opponent"
            position = "tie" if verdict == "tie" else ("A" if verdict == first else "B")
            rows.append({
                "checkpoint": checkpoint, "suite": suite, "item_id": f"p{i}", "category": "", "order": order,
                "opponent": opponent, "verdict": verdict, "position": position, "rationale": "",
                "input_tokens": 100, "output_tokens": 20, "cost_usd": 0.001, "latency_s": 0.5, "cached": False,
                "candidate_length": 100, "opponent_length": 50, "judge_id": "j",
            })  # fmt: skip
    # the stage's placeholder row (no order) must be ignored
    rows.append({"checkpoint": checkpoint, "suite": suite, "item_id": "", "order": "", "verdict": "none"})
    return pl.DataFrame(rows)
