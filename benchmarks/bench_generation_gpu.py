"""Generation throughput of the transformers backend on a GPU: default (dynamic) vs static KV cache.

Runs where CUDA is available (the device machine; not CI). The weights are random: throughput depends on the
architecture, not the values, and the machine cannot download real ones. The model never emits EOS (the
config has none), so every sequence generates exactly ``--new-tokens`` tokens. Reports tokens/s and the share
of the memory-bandwidth bound (each decoding step reads every weight once).

    python benchmarks/bench_generation_gpu.py --tokenizer-dir DIR [--sizes 135m,1.2b] [--batches 1,8,32]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from resources.runners.base import CheckpointRef, SamplingParams
from resources.runners.transformers_backend import TransformersBackend

#: Llama-architecture sizes: SmolLM2-135M's shape, and a ~1.2B shape (as in the issue's H100 measurement).
SIZES = {
    "135m": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
             "num_key_value_heads": 3},
    "1.2b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
             "num_key_value_heads": 8},
}  # fmt: skip
PEAK_BANDWIDTH = {"H100": 3.35e12, "H200": 4.8e12}


def build_checkpoint(size: str, tokenizer_dir: Path, out: Path) -> Path:
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=4096, tie_word_embeddings=True,
                         bos_token_id=None, eos_token_id=None, **SIZES[size])  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def measure(backend: TransformersBackend, prompts: list[str], new_tokens: int, repeats: int) -> float:
    params = SamplingParams(max_new_tokens=new_tokens)
    backend.generate(prompts, params)  # warm-up (and static-cache compilation)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        backend.generate(prompts, params)
    torch.cuda.synchronize()
    return repeats * len(prompts) * new_tokens / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer-dir", type=Path, required=True)
    parser.add_argument("--sizes", default="135m,1.2b")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: this benchmark runs on a GPU machine", file=sys.stderr)
        return 2
    gpu = torch.cuda.get_device_name()
    peak = next((bw for name, bw in PEAK_BANDWIDTH.items() if name in gpu), None)
    rows = []
    prompt = (
        "Question: Natalia sold clips to 48 of her friends in April. How many clips did she sell?\nAnswer:"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            path = build_checkpoint(size, args.tokenizer_dir, Path(tmp) / size)
            ref = CheckpointRef(size, path, "hf", f"random-{size}")
            for kv_cache in ("dynamic", "static"):
                for batch in (int(b) for b in args.batches.split(",")):
                    backend = TransformersBackend(ref, cache_dir=Path(tmp), device="cuda", dtype="bfloat16",
                                                  batch_size=batch, kv_cache=kv_cache)  # fmt: skip
                    weight_bytes = sum(p.numel() * p.element_size() for p in backend.model.parameters())
                    tps = measure(backend, [prompt] * batch, args.new_tokens, args.repeats)
                    steps = tps / batch
                    share = steps * weight_bytes / peak if peak else float("nan")
                    rows.append({"gpu": gpu, "size": size, "params_M": round(weight_bytes / 2 / 1e6), "kv_cache": kv_cache,
                                 "batch": batch, "tokens_per_s": round(tps, 1), "bandwidth_share": round(share, 4)})  # fmt: skip
                    print(json.dumps(rows[-1]), flush=True)
                    backend.close()
    print(
        f"\n{'size':>6} {'batch':>5} {'dynamic tok/s':>14} {'static tok/s':>13} {'speed-up':>8} {'static BW share':>15}"
    )
    for size in args.sizes.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            dyn = next(
                r for r in rows if r["size"] == size and r["batch"] == batch and r["kv_cache"] == "dynamic"
            )
            sta = next(
                r for r in rows if r["size"] == size and r["batch"] == batch and r["kv_cache"] == "static"
            )
            print(f"{size:>6} {batch:>5} {dyn['tokens_per_s']:>14} {sta['tokens_per_s']:>13} "
                  f"{sta['tokens_per_s'] / dyn['tokens_per_s']:>7.2f}x {sta['bandwidth_share']:>14.1%}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
