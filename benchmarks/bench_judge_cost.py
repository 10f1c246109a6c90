"""The judge cost of one checkpoint: 500 prompts x 2 orders with a Claude judge, at the prices of the table in
config (eval_assets/judge/prices.yaml), with and without the Message Batches API, prompt caching of the rubric,
and reuse of verdicts already made (production's answers never change; a candidate's unchanged answers hit the
judge cache).

    .venv/bin/python benchmarks/bench_judge_cost.py [--prompts 500] [--model claude-sonnet-4-5-20250929]

Token counts are estimated from the real rubric and rendered messages at 4 characters per token, with answers of
``--answer-chars`` characters and judge replies of ``--reply-tokens`` tokens (reasoning, then the verdict line).
Prompt caching applies only to a prefix of at least ``--min-cache-tokens`` tokens (1024 for Sonnet and Opus,
2048 for Haiku): a rubric shorter than that is not cached, and the benchmark says so rather than count a saving.
"""

from __future__ import annotations

import argparse
import math

from eval_assets.judge import RUBRIC, load_prices, render_pair


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=500)
    parser.add_argument("--model", default="claude-sonnet-4-5-20250929")
    parser.add_argument("--question-chars", type=int, default=300)
    parser.add_argument("--answer-chars", type=int, default=1200)
    parser.add_argument("--reply-tokens", type=int, default=200)
    parser.add_argument("--min-cache-tokens", type=int, default=1024)
    parser.add_argument(
        "--rubric-tokens", type=int, default=None, help="pretend the rubric has this many tokens"
    )
    parser.add_argument(
        "--unchanged", type=float, default=0.5, help="share of the candidate's answers already judged"
    )
    args = parser.parse_args()
    prices = load_prices()
    price = prices.price(args.model)
    system = args.rubric_tokens or tokens(RUBRIC)
    user = tokens(render_pair("q" * args.question_chars, "a" * args.answer_chars, "b" * args.answer_chars))
    calls = args.prompts * 2
    cacheable = system >= args.min_cache_tokens
    print(
        f"judge {args.model}, price table v{prices.version} ({prices.as_of}): ${price.input}/M in, "
        f"${price.output}/M out, cache write ${price.cache_write}/M, read ${price.cache_read}/M, batch x{price.batch_discount}"
    )
    print(
        f"{args.prompts} prompts x 2 orders = {calls} calls; rubric {system} tokens, message {user} tokens, "
        f"reply {args.reply_tokens} tokens"
    )
    if not cacheable:
        print(
            f"  note: the rubric ({system} tokens) is below the {args.min_cache_tokens}-token minimum for prompt "
            "caching: cache_control is sent but nothing is cached; caching rows equal the uncached ones"
        )

    def run_cost(n_calls: int, *, cache: bool, batch: bool) -> float:
        if n_calls == 0:
            return 0.0
        if cache and cacheable:
            first = price.cost(
                input_tokens=user, output_tokens=args.reply_tokens, cache_write=system, batch=batch
            )
            rest = price.cost(
                input_tokens=user, output_tokens=args.reply_tokens, cache_read=system, batch=batch
            )
            return first + (n_calls - 1) * rest
        return n_calls * price.cost(input_tokens=system + user, output_tokens=args.reply_tokens, batch=batch)

    fresh = round(calls * (1 - args.unchanged))
    print(f"{'batches':>8} {'caching':>8} {'reuse':>8} {'calls':>6} {'USD':>9}")
    for batch in (False, True):
        for cache in (False, True):
            for reuse in (False, True):
                n = fresh if reuse else calls
                print(
                    f"{batch!s:>8} {cache!s:>8} {reuse!s:>8} {n:>6} {run_cost(n, cache=cache, batch=batch):>9.2f}"
                )
    print(
        f"reuse: {args.unchanged:.0%} of the candidate's answers equal ones already judged against production's "
        "(cache hits on judge id, rubric, prompt, both answers, order); production's own answers are never re-made"
    )
    best = run_cost(fresh, cache=True, batch=True)
    worst = run_cost(calls, cache=False, batch=False)
    verdict = "under" if worst < 10 else "over"
    print(
        f"per checkpoint: ${worst:.2f} with nothing ({verdict} the $10 target), ${best:.2f} with batches, caching "
        "and reuse"
    )


if __name__ == "__main__":
    main()
