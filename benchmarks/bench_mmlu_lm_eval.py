"""Benchmark: evalgate's MMLU vs lm-eval 0.4.13's own `mmlu_<subject>` tasks, same model, same items.

Ours: the `mmlu` suite's profile items (:func:`eval_assets.suites.loaders.load_items`), predicted by
:func:`eval_assets.predict.predict_suite` with an empty prediction cache on the transformers backend (lm-eval's
``HFLM`` wrapping the model we load), scored by :func:`eval_assets.scoring.score_items`.

Theirs: lm-eval's own ``mmlu_<subject>`` task configs, read from the installed package's YAML (``include`` of
``_default_template_yaml`` resolved by lm-eval's loader), with only the dataset source replaced: the YAMLs point
at ``cais/mmlu`` on the Hugging Face hub, unreachable here, so ``dataset_path: arrow`` and
``dataset_kwargs.data_files`` name the pinned local Arrow files (test and dev splits) instead. Description,
``doc_to_text``, ``doc_to_choice``, ``fewshot_split: dev`` and the ``first_n`` sampler are lm-eval's. The configs
go to ``lm_eval.evaluator.simple_evaluate(model=HFLM(pretrained=<converted safetensors dir>), tasks=[...],
num_fewshot=5, samples={task: [test indices]})``, so lm-eval evaluates exactly the items our profile selects.

Compared per item: the rendered context and continuations (string equality), each continuation's
log-likelihood (``|ours - lm-eval| <= --atol``), the chosen answer and its correctness; then the accuracy.

    .venv/bin/python benchmarks/bench_mmlu_lm_eval.py [--profile smoke] [--model-cache /tmp/evalgate-cache]

Exits 1 on any mismatch, 3 if lm-eval could not run (the message names the call and the exception).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from eval_assets.checkpoints import build_manifest
from eval_assets.datapkgs import SMOLLM2_GGUF, data_dir, data_file, data_tree
from eval_assets.suites.items import LikelihoodItem
from eval_assets.suites.mmlu import MMLU_TREE
from eval_assets.suites.spec import SuiteSpec, load_suite_specs

SUITE = "mmlu"
CHECKPOINT = "baseline"
#: Items whose context strings are printed side by side.
SHOWN_CONTEXTS = 3

T = TypeVar("T")


class LmEvalFailed(RuntimeError):
    """lm-eval could not run; the message names the call and the exception."""


@dataclass(frozen=True)
class Side:
    """One harness's per-item results, keyed by item id (``subject/index``)."""

    contexts: dict[str, str]
    continuations: dict[str, tuple[str, ...]]
    logprobs: dict[str, list[float]]
    chosen: dict[str, int]
    correct: dict[str, bool]
    timings: dict[str, float]
    #: the harness's own aggregate, where it reports one (lm-eval: per-task acc weighted by sample count)
    reported_accuracy: float | None = None

    @property
    def accuracy(self) -> float:
        return sum(self.correct.values()) / len(self.correct)


def _timed(timings: dict[str, float], name: str, call: Callable[[], T]) -> T:
    started = time.perf_counter()
    try:
        return call()
    finally:
        timings[name] = time.perf_counter() - started


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])


# -- ours ----------------------------------------------------------------------------------------------------
def run_ours(
    spec: SuiteSpec, items: list[LikelihoodItem], gguf: Path, model_cache: Path, work: Path, batch_size: int
) -> tuple[Side, Path]:
    """Our predictions through the real path (empty cache → every item a model call). Returns the results and
    the converted safetensors directory, which lm-eval then loads."""
    from eval_assets.predict import predict_suite
    from eval_assets.scoring import score_items
    from resources.prediction_cache import PredictionCache
    from resources.runners.base import CheckpointRef, ModelBackend
    from resources.runners.transformers_backend import (
        TransformersBackend,
        converted_dir,
        engine_id,
        ensure_loadable_dir,
    )

    timings: dict[str, float] = {}
    manifest = _timed(timings, "hash checkpoint", lambda: build_manifest(gguf, name=CHECKPOINT))
    ref = CheckpointRef(name=CHECKPOINT, path=gguf, format=manifest.format, model_hash=manifest.model_hash)
    cached = (converted_dir(model_cache, ref.model_hash) / "config.json").is_file()
    conversion = "converted copy found" if cached else "GGUF conversion"
    model_dir = _timed(timings, conversion, lambda: ensure_loadable_dir(ref, model_cache))

    def open_backend() -> ModelBackend:
        return _timed(
            timings,
            "model load",
            lambda: TransformersBackend(
                ref, cache_dir=model_cache, device="cpu", dtype="float32", batch_size=batch_size
            ),
        )

    frame, stats = predict_suite(
        checkpoint=CHECKPOINT,
        **manifest.key_hashes(),
        spec=spec,
        items=items,
        cache=PredictionCache(work / "prediction_cache"),
        engine=engine_id("cpu", "float32"),
        open_backend=open_backend,
    )
    if stats.cache_hits:
        raise RuntimeError(f"the prediction cache under {work} was not empty ({stats.cache_hits} hits)")
    timings["predict (excl. model load)"] = stats.wall_seconds - timings["model load"]
    scores = score_items(spec, items, frame)
    outputs = dict(zip(frame["item_id"].to_list(), frame["output"].to_list(), strict=True))
    logprobs = {item_id: list(json.loads(output)["logprobs"]) for item_id, output in outputs.items()}
    side = Side(
        contexts={item.item_id: item.context for item in items},
        continuations={item.item_id: item.continuations for item in items},
        logprobs=logprobs,
        chosen={item_id: _argmax(values) for item_id, values in logprobs.items()},
        correct=dict(zip(scores["item_id"].to_list(), scores["correct"].to_list(), strict=True)),
        timings=timings,
    )
    return side, model_dir


# -- lm-eval -------------------------------------------------------------------------------------------------
def _step(call: str, action: Callable[[], T]) -> T:
    """Run one lm-eval step; any exception becomes :class:`LmEvalFailed` naming the call."""
    try:
        return action()
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        raise LmEvalFailed(f"{call} raised {detail}") from exc


def lm_eval_task_configs(
    task_manager: Any, subjects: list[str], mmlu_root: Path, datasets_cache: Path
) -> list[dict[str, Any]]:
    """lm-eval's own ``mmlu_<subject>`` configs with the dataset source pointed at the local Arrow files."""
    from lm_eval.tasks._yaml_loader import load_yaml

    configs: list[dict[str, Any]] = []
    for subject in subjects:
        task = f"mmlu_{subject}"
        entry = task_manager.task_index.get(task)
        if entry is None or entry.yaml_path is None:
            raise LmEvalFailed(f"lm-eval has no task {task!r} with a YAML config")
        config = dict(load_yaml(entry.yaml_path, resolve_func=True))
        data_files = {
            split: [str(p) for p in sorted((mmlu_root / subject / split).glob("data-*.arrow"))]
            for split in (config["test_split"], config["fewshot_split"])
        }
        config.update(
            dataset_path="arrow",
            dataset_name=None,
            dataset_kwargs={"data_files": data_files, "cache_dir": str(datasets_cache)},
        )
        configs.append(config)
    return configs


def run_lm_eval(
    items: list[LikelihoodItem],
    num_fewshot: int,
    model_dir: Path,
    mmlu_root: Path,
    work: Path,
    batch_size: int,
) -> Side:
    try:
        from lm_eval.evaluator import simple_evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise LmEvalFailed(f"importing lm_eval's evaluator, HFLM and TaskManager raised {exc!r}") from exc

    timings: dict[str, float] = {}
    indices: dict[str, list[int]] = {}
    for item in items:
        subject, index = item.item_id.split("/")
        indices.setdefault(subject, []).append(int(index))
    task_manager = _timed(
        timings, "TaskManager index", lambda: _step("lm_eval.tasks.TaskManager()", TaskManager)
    )
    configs = _step(
        "lm_eval.tasks._yaml_loader.load_yaml(<mmlu_<subject>.yaml>) with the dataset source replaced",
        lambda: lm_eval_task_configs(task_manager, sorted(indices), mmlu_root, work / "hf_datasets"),
    )
    model = _timed(
        timings,
        "model load",
        lambda: _step(
            f"HFLM(pretrained={str(model_dir)!r}, device='cpu', dtype='float32', batch_size={batch_size})",
            lambda: HFLM(pretrained=str(model_dir), device="cpu", dtype="float32", batch_size=batch_size),
        ),
    )
    # lm-eval maps a sample's position back to its doc id as indices[position], while it visits the docs in
    # test-split order: the indices must be sorted or logged doc ids come out wrong.
    samples = {f"mmlu_{subject}": sorted(values) for subject, values in indices.items()}
    call = (
        f"lm_eval.evaluator.simple_evaluate(model=HFLM(...), tasks=[{len(configs)} mmlu_<subject> configs], "
        f"num_fewshot={num_fewshot}, samples={{{len(samples)} tasks}})"
    )
    results = _timed(
        timings,
        "simple_evaluate (data, requests, likelihood)",
        lambda: _step(
            call,
            lambda: simple_evaluate(
                model=model,
                tasks=configs,
                task_manager=task_manager,
                num_fewshot=num_fewshot,
                samples=samples,
                bootstrap_iters=0,
                log_samples=True,
            ),
        ),
    )
    if not results:
        raise LmEvalFailed(f"{call} returned {results!r}")
    contexts: dict[str, str] = {}
    continuations: dict[str, tuple[str, ...]] = {}
    logprobs: dict[str, list[float]] = {}
    correct: dict[str, bool] = {}
    for task, logged in results["samples"].items():
        subject = task.removeprefix("mmlu_")
        for sample in logged:
            item_id = f"{subject}/{sample['doc_id']}"
            contexts[item_id] = sample["arguments"][0][0]
            continuations[item_id] = tuple(argument[1] for argument in sample["arguments"])
            logprobs[item_id] = [float(loglikelihood) for loglikelihood, _ in sample["filtered_resps"]]
            correct[item_id] = bool(sample["acc"])
    per_task = [(r["acc,none"], r["sample_len"]) for r in results["results"].values() if "acc,none" in r]
    reported = sum(acc * n for acc, n in per_task) / max(sum(n for _, n in per_task), 1)
    return Side(
        contexts=contexts,
        continuations=continuations,
        logprobs=logprobs,
        chosen={item_id: _argmax(values) for item_id, values in logprobs.items()},
        correct=correct,
        timings=timings,
        reported_accuracy=reported,
    )


# -- comparison ----------------------------------------------------------------------------------------------
def _show_context(item_id: str, ours: str, theirs: str) -> None:
    if ours == theirs:
        tail = ours[-120:].replace("\n", "\\n")
        print(f"  {item_id}: identical ({len(ours)} chars), ends …{tail}")
        return
    print(f"  {item_id}: DIFFERENT ({len(ours)} vs {len(theirs)} chars)")
    diff = difflib.unified_diff(
        ours.splitlines(), theirs.splitlines(), "evalgate", "lm-eval", n=1, lineterm=""
    )
    for line in list(diff)[:20]:
        print(f"    {line}")


def compare(items: list[LikelihoodItem], ours: Side, theirs: Side, atol: float) -> list[str]:
    """Print the comparison; return the mismatches found."""
    problems: list[str] = []
    ids = [item.item_id for item in items]
    missing = [i for i in ids if i not in theirs.logprobs]
    if missing:
        problems.append(f"lm-eval returned no result for {len(missing)} items: {missing[:5]}")
    extra = sorted(set(theirs.logprobs) - set(ids))
    if extra:
        problems.append(f"lm-eval returned {len(extra)} items we did not select: {extra[:5]}")
    shared = [i for i in ids if i in theirs.logprobs]

    context_diffs = [i for i in shared if ours.contexts[i] != theirs.contexts[i]]
    continuation_diffs = [i for i in shared if ours.continuations[i] != theirs.continuations[i]]
    deltas = {
        i: max(abs(a - b) for a, b in zip(ours.logprobs[i], theirs.logprobs[i], strict=True))
        for i in shared
        if len(ours.logprobs[i]) == len(theirs.logprobs[i])
    }
    logprob_diffs = [i for i in shared if i not in deltas or deltas[i] > atol]
    choice_diffs = [i for i in shared if ours.chosen[i] != theirs.chosen[i]]
    correct_diffs = [i for i in shared if ours.correct[i] != theirs.correct[i]]

    print(f"\nRendered contexts (first {SHOWN_CONTEXTS} items; all {len(shared)} compared):")
    for item_id in shared[:SHOWN_CONTEXTS]:
        _show_context(item_id, ours.contexts[item_id], theirs.contexts[item_id])
    for item_id in context_diffs:
        if item_id not in shared[:SHOWN_CONTEXTS]:
            _show_context(item_id, ours.contexts[item_id], theirs.contexts[item_id])

    print(f"\nPer item ({len(shared)} items, {sum(len(ours.logprobs[i]) for i in shared)} log-likelihoods):")
    print(f"  {'item':<42} {'gold':>4} {'ours':>4} {'lm-eval':>7} {'max |Δ loglik|':>15}")
    for item in items:
        i = item.item_id
        if i not in shared:
            continue
        delta = f"{deltas[i]:.2e}" if i in deltas else "n/a"
        flag = "" if i not in set(choice_diffs) | set(logprob_diffs) else "  <-- mismatch"
        print(
            f"  {i:<42} {'ABCD'[item.gold]:>4} {'ABCD'[ours.chosen[i]]:>4} {'ABCD'[theirs.chosen[i]]:>7} {delta:>15}{flag}"
        )

    worst = max(deltas.values()) if deltas else float("nan")
    print(f"\n  contexts identical:           {len(shared) - len(context_diffs)}/{len(shared)}")
    print(f"  continuations identical:      {len(shared) - len(continuation_diffs)}/{len(shared)}")
    print(f"  max |Δ log-likelihood|:       {worst:.3g} (tolerance {atol:g})")
    print(f"  items whose prediction differs: {len(choice_diffs)}")
    print(f"  items whose correctness differs: {len(correct_diffs)}")
    for name, found in (
        ("rendered context", context_diffs),
        ("continuations", continuation_diffs),
        ("log-likelihood beyond tolerance", logprob_diffs),
        ("chosen answer", choice_diffs),
        ("correctness", correct_diffs),
    ):
        if found:
            problems.append(f"{name} differs on {len(found)} items: {found[:5]}")
    ours_acc = sum(ours.correct[i] for i in shared) / max(len(shared), 1)
    theirs_acc = sum(theirs.correct[i] for i in shared) / max(len(shared), 1)
    if ours_acc != theirs_acc:
        problems.append(f"accuracy differs: ours {ours_acc:.4f}, lm-eval {theirs_acc:.4f}")
    return problems


def _print_timings(ours: Side, theirs: Side) -> None:
    print("\nWall time (s, same process, ours first):")
    for label, side in (("evalgate", ours), ("lm-eval", theirs)):
        parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in side.timings.items())
        print(f"  {label:<9} total {sum(side.timings.values()):7.2f}  ({parts})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profile", default="smoke", help="profile of the mmlu suite (default: smoke)")
    parser.add_argument(
        "--limit", type=int, default=None, help="override the profile's item count (same seeded selection)"
    )
    parser.add_argument(
        "--model-cache",
        type=Path,
        default=None,
        help="converted checkpoints (GGUF → safetensors), e.g. /tmp/evalgate-cache; default: a temp dir",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="data packages (default: evalgate's)")
    parser.add_argument("--batch-size", type=int, default=8, help="HFLM batch size, both sides")
    parser.add_argument("--atol", type=float, default=1e-4, help="tolerance on each log-likelihood")
    args = parser.parse_args(argv)

    # No network here: fail fast instead of retrying the hub. Set before transformers/datasets are imported.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from eval_assets.suites.loaders import load_items

    data_root = (args.data_dir or data_dir()).expanduser().resolve()
    spec = load_suite_specs()[SUITE]
    if args.limit is not None:
        profile = spec.profile(args.profile).model_copy(update={"limit": args.limit})
        spec = spec.model_copy(update={"profiles": {**spec.profiles, args.profile: profile}})
    timings_items: dict[str, float] = {}
    loaded = _timed(timings_items, "load items", lambda: load_items(spec, args.profile, data_root))
    items = [item for item in loaded if isinstance(item, LikelihoodItem)]
    gguf = data_file(SMOLLM2_GGUF, data_root)

    import torch
    import transformers

    print(
        f"{SUITE} profile {args.profile}{' (limit overridden)' if args.limit else ''}: {len(items)} items, {spec.template.num_fewshot}-shot | model {gguf.name}"
    )
    print(
        f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}, lm-eval {metadata.version('lm-eval')}, {os.cpu_count()} CPUs "
        f"(shared; load average {os.getloadavg()[0]:.2f} at start)"
    )
    with tempfile.TemporaryDirectory(prefix="evalgate-mmlu-bench-") as tmp:
        work = Path(tmp)
        model_cache = (args.model_cache or work / "model_cache").expanduser().resolve()
        ours, model_dir = run_ours(spec, items, gguf, model_cache, work, args.batch_size)
        ours.timings["load items"] = timings_items["load items"]
        load_between = os.getloadavg()[0]
        try:
            theirs = run_lm_eval(
                items,
                spec.template.num_fewshot,
                model_dir,
                data_tree(MMLU_TREE, data_root),
                work,
                args.batch_size,
            )
        except LmEvalFailed as exc:
            print(f"\nlm-eval could not run offline here: {exc}", file=sys.stderr)
            return 3
    print(f"(1-min load average: {load_between:.2f} after ours, {os.getloadavg()[0]:.2f} after lm-eval)")

    problems = compare(items, ours, theirs, args.atol)
    n = len(items)
    print(
        f"\nAccuracy: evalgate {ours.accuracy:.4f} ({sum(ours.correct.values())}/{n}) | "
        f"lm-eval {theirs.accuracy:.4f} ({sum(theirs.correct.values())}/{len(theirs.correct)}; its results "
        f"table, per-task acc weighted by items: {theirs.reported_accuracy:.4f})"
    )
    if theirs.reported_accuracy is not None and abs(theirs.reported_accuracy - theirs.accuracy) > 1e-9:
        problems.append(
            f"lm-eval's results table ({theirs.reported_accuracy:.4f}) disagrees with its samples "
            f"({theirs.accuracy:.4f})"
        )
    _print_timings(ours, theirs)
    if problems:
        print("\nMISMATCH:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("\nOK: same contexts, same log-likelihoods within tolerance, same predictions, same accuracy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
