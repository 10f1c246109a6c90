"""The two requests a kind can make of the model backend: log-likelihoods of continuations, or generations.

The prompt hashes are part of the prediction cache key: change what they cover only together with a new
``OUTPUT_FORMAT_VERSION`` in :mod:`eval_assets.predict`, or cached predictions of one prompt are served for
another. Both cover the tokenizer hash (it turns the text into the tokens the model scores or continues; the
cache key's model identity covers it as well).

A sampled generation is seeded per sample: sample k of a prompt gets a seed derived from the suite's seed, the
rendered prompt and k (:func:`generation_seed`), never from its position in a batch, so its output does not
depend on which other items missed the cache, on the batch size, or on how many samples the profile draws.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from eval_assets.hashing import prompt_hash, sample_seed
from eval_assets.kinds._types import (
    GenerationOutput,
    LikelihoodOutput,
    MalformedPredictionError,
    ModelRequest,
    output_json,
)
from eval_assets.suites.items import GenerationItem, Item, LikelihoodItem

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec
    from resources.runners.base import ModelBackend, SamplingParams


def _likelihood_items(items: Sequence[Item]) -> list[LikelihoodItem]:
    wrong = [item.item_id for item in items if not isinstance(item, LikelihoodItem)]
    if wrong:
        raise TypeError(f"a likelihood request needs likelihood items; got others: {wrong[:3]}")
    return [item for item in items if isinstance(item, LikelihoodItem)]


def _generation_items(items: Sequence[Item]) -> list[GenerationItem]:
    wrong = [item.item_id for item in items if not isinstance(item, GenerationItem)]
    if wrong:
        raise TypeError(f"a generation request needs generation items; got others: {wrong[:3]}")
    return [item for item in items if isinstance(item, GenerationItem)]


# -- likelihood ---------------------------------------------------------------------------------------------
def likelihood_prompt_hash(spec: SuiteSpec, item: Item, tokenizer_hash: str) -> str:
    """Template version, the rendered ``(context, continuation)`` requests, and the tokenizer that splits them
    into the tokens scored."""
    (likelihood_item,) = _likelihood_items([item])
    return prompt_hash(
        {
            "template": spec.template.version,
            "requests": likelihood_item.requests,
            "tokenizer_hash": tokenizer_hash,
        }
    )


def compute_likelihood(
    backend: ModelBackend, spec: SuiteSpec, items: Sequence[Item]
) -> tuple[list[str], int]:
    likelihood_items = _likelihood_items(items)
    requests = [request for item in likelihood_items for request in item.requests]
    results = backend.loglikelihood(requests)
    outputs: list[str] = []
    offset = 0
    for item in likelihood_items:
        chunk = results[offset : offset + len(item.continuations)]
        offset += len(item.continuations)
        outputs.append(
            json.dumps({"logprobs": [r.logprob for r in chunk], "greedy": [r.is_greedy for r in chunk]})
        )
    return outputs, len(requests)


def decode_likelihood(item: Item, output: str) -> LikelihoodOutput:
    value = output_json(output, item.item_id)
    try:
        logprobs = tuple(float(x) for x in value["logprobs"])
        greedy = tuple(bool(x) for x in value.get("greedy", [False] * len(logprobs)))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedPredictionError(
            f"item {item.item_id}: prediction {output[:80]!r} has no list of `logprobs` ({exc})"
        ) from exc
    return LikelihoodOutput(logprobs=logprobs, greedy=greedy)


LIKELIHOOD = ModelRequest(
    name="likelihood",
    prompt_hash=likelihood_prompt_hash,
    compute=compute_likelihood,
    decode=decode_likelihood,
)


# -- generation ---------------------------------------------------------------------------------------------
def generation_prompt_hash(spec: SuiteSpec, item: Item, tokenizer_hash: str) -> str:
    """Template version, the messages, the sample index, and for chat prompts the tokenizer (its chat template
    turns messages into text)."""
    (generation_item,) = _generation_items([item])
    return prompt_hash(
        {
            "template": spec.template.version,
            "messages": [list(m) for m in generation_item.messages],
            "sample": generation_item.sample,
            "chat": spec.template.chat,
            "tokenizer_hash": tokenizer_hash,
        }
    )


def generation_seed(spec: SuiteSpec, item: GenerationItem) -> int:
    """The seed of one sample: a function of the suite's seed, the rendered prompt and the sample index only
    (a subset of the cache key), so one key always names one output."""
    base = spec.sampling.seed if spec.sampling is not None else 0
    rendered = prompt_hash(
        {
            "template": spec.template.version,
            "messages": [list(m) for m in item.messages],
            "sample": item.sample,
            "chat": spec.template.chat,
        }
    )
    return sample_seed(base, rendered)


def sampling_params(spec: SuiteSpec) -> SamplingParams | None:
    from resources.runners.base import SamplingParams

    if spec.sampling is None:
        return None
    s = spec.sampling
    return SamplingParams(
        temperature=s.temperature,
        top_p=s.top_p,
        max_new_tokens=s.max_new_tokens,
        stop=tuple(s.stop),
        seed=s.seed,
    )


def compute_generation(
    backend: ModelBackend, spec: SuiteSpec, items: Sequence[Item]
) -> tuple[list[str], int]:
    params = sampling_params(spec)
    if params is None:
        raise ValueError(f"suite {spec.name}: a generation request needs the spec's `sampling` section")
    generation_items = _generation_items(items)
    prompts = [
        backend.render_chat(item.messages) if spec.template.chat else "\n\n".join(c for _, c in item.messages)
        for item in generation_items
    ]
    # Every backend seeds each prompt on its own (a per-row generator, a per-request seed), with the seed of
    # its sample; greedy decoding needs none.
    seeds = [generation_seed(spec, item) for item in generation_items] if params.temperature > 0 else None
    texts = backend.generate(prompts, params, seeds=seeds)
    return [json.dumps({"text": text}) for text in texts], len(prompts)


def decode_generation(item: Item, output: str) -> GenerationOutput:
    text = output_json(output, item.item_id).get("text")
    if not isinstance(text, str):
        raise MalformedPredictionError(
            f"item {item.item_id}: prediction {output[:80]!r} has no `text` string"
        )
    return GenerationOutput(text=text)


GENERATION = ModelRequest(
    name="generation",
    prompt_hash=generation_prompt_hash,
    compute=compute_generation,
    decode=decode_generation,
)
