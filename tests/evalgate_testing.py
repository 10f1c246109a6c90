"""Helpers shared by tests (importable: pytest puts tests/ on sys.path)."""

from typing import Any


def tiny_specs(
    arc: int = 6, gsm8k: int = 2, mmlu: int = 0, humaneval: int = 0, mbpp: int = 0, max_new_tokens: int = 24
) -> dict[str, Any]:
    """The built-in suites with small smoke profiles, for tests on the real model. A limit of 0 drops the suite."""
    from eval_assets.suites import load_suite_specs
    from eval_assets.suites.spec import Profile

    specs = load_suite_specs()
    limits = {"arc_easy": arc, "gsm8k": gsm8k, "mmlu": mmlu, "humaneval": humaneval, "mbpp": mbpp}
    tiny = {}
    for name, spec in specs.items():
        if not limits.get(name, 0):
            continue
        smoke = spec.profiles["smoke"].model_copy(update={"limit": limits[name]})
        update: dict[str, Any] = {"profiles": {"smoke": smoke, "full": Profile()}}
        if spec.sampling is not None:
            update["sampling"] = spec.sampling.model_copy(update={"max_new_tokens": max_new_tokens})
        tiny[name] = spec.model_copy(update=update)
    return tiny


def tiny_policy() -> Any:
    """The packaged gate policy, except that GSM8K's unparsed-answer limit is lifted: ``tiny_specs`` cuts
    generations at a few tokens, so most answers end before their number (a real smoke run uses 160)."""
    from eval_assets.gate import load_gate_policy
    from eval_assets.rules.error_rate import SuiteLimits

    policy = load_gate_policy()
    section = policy.section("error_rate")
    relaxed = section.model_copy(
        update={"suites": section.suites | {"gsm8k": SuiteLimits(max_unparsed_rate=1.0)}}
    )
    return policy.model_copy(
        update={"rules": policy.rules | {"error_rate": relaxed}, "version": policy.version + 1000}
    )
