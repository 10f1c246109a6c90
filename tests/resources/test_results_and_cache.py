import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from resources.prediction_cache import PARTITION, CachedPrediction, PredictionCache, model_prefix
from resources.results_store import ResultsStore

M1 = "sha256:" + "1" * 64
M2 = "sha256:" + "2" * 64
REPO = Path(__file__).parents[2]


def _write(cache: PredictionCache, identity: str, entries: list[tuple[str, str]], sampling: str = "s1"):  # type: ignore[no-untyped-def]
    return cache.write(
        model_identity=identity, model_hash="sha256:w", sampling_hash=sampling, suite="x", engine="e",
        entries=[CachedPrediction(p, f"item-{p}", out) for p, out in entries],
    )  # fmt: skip


def test_cache_is_keyed_on_model_prompt_and_sampling(tmp_path: Path) -> None:
    cache = PredictionCache(tmp_path / "cache")
    assert cache.lookup(M1, "s1", ["p1"]).outputs == {}
    written = _write(cache, M1, [("p1", "out1"), ("p2", "out2")])
    assert (written.inserted, written.differing) == (2, [])
    assert cache.lookup(M1, "s1", ["p1", "p2", "p3"]).outputs == {"p1": "out1", "p2": "out2"}
    assert cache.lookup(M2, "s1", ["p1"]).outputs == {}, "another model's outputs must never be served"
    assert cache.lookup(M1, "s2", ["p1"]).outputs == {}
    _write(cache, M1, [("p3", "o3")])
    assert cache.count() == 3
    cache.compact()
    assert cache.lookup(M1, "s1", ["p3"]).outputs == {"p3": "o3"}


def test_a_key_is_written_once_and_a_differing_duplicate_is_reported_not_stored(tmp_path: Path) -> None:
    first, second = PredictionCache(tmp_path / "cache"), PredictionCache(tmp_path / "cache")
    _write(first, M1, [("p1", "from first")])
    written = _write(second, M1, [("p1", "from second"), ("p2", "new"), ("p2", "same key twice in a chunk")])
    assert written.inserted == 1, "p1 was committed first by the other writer; p2 once"
    assert written.committed == {"p1": "from first", "p2": "new"}, "the committed output is the one served"
    assert [(d.prompt_hash, d.committed, d.other) for d in written.differing] == [
        ("p1", "from first", "from second")
    ]
    agreeing = _write(second, M1, [("p1", "from first")])
    assert (agreeing.inserted, agreeing.differing) == (0, [])
    table = pl.read_delta(str(tmp_path / "cache"))
    assert sorted(table.select("prompt_hash", "output").rows()) == [("p1", "from first"), ("p2", "new")]


def test_duplicates_in_the_table_resolve_to_the_earliest_row_and_are_reported(tmp_path: Path) -> None:
    cache = PredictionCache(tmp_path / "cache")
    _write(cache, M1, [("p1", "early")])
    # Another tool appends a second row for the same key (a plain append, bypassing the merge).
    late = pl.read_delta(str(tmp_path / "cache")).with_columns(
        pl.lit("late").alias("output"),
        pl.col("created_at").dt.offset_by("1s"),
        pl.lit("other").alias("writer"),
    )
    write_deltalake(str(tmp_path / "cache"), late.to_arrow(), mode="append", partition_by=[PARTITION])
    found = PredictionCache(tmp_path / "cache").lookup(M1, "s1", ["p1"])
    assert found.outputs == {"p1": "early"}
    assert [(d.committed, d.other) for d in found.differing] == [("early", "late")]


def test_lookups_read_only_the_models_partition(tmp_path: Path) -> None:
    assert model_prefix(M1) != model_prefix(M2)
    cache = PredictionCache(tmp_path / "cache")
    _write(cache, M1, [("p1", "one")])
    _write(cache, M2, [("p1", "two")])
    assert all(f"{PARTITION}={model_prefix(M1)}" in f for f in cache.files(M1))
    for file in cache.files(M2):  # a lookup of M1 that touched M2's files would now fail
        Path(file).unlink()
    assert cache.lookup(M1, "s1", ["p1"]).outputs == {"p1": "one"}


def test_compaction_merges_a_partitions_files(tmp_path: Path) -> None:
    cache = PredictionCache(tmp_path / "cache")
    for index in range(9):
        _write(cache, M1, [(f"p{index}", f"o{index}")])
    _write(cache, M2, [("q", "other")])
    assert len(cache.files(M1)) == 9
    assert cache.compact(M1, min_files=10) is False, "below the threshold nothing happens"
    assert cache.compact(M1, min_files=8) is True
    assert len(cache.files(M1)) == 1 and len(cache.files(M2)) == 1
    assert cache.lookup(M1, "s1", [f"p{i}" for i in range(9)]).outputs == {f"p{i}": f"o{i}" for i in range(9)}


def test_a_table_of_the_old_layout_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    old = pl.DataFrame(
        {"model_hash": ["sha256:w"], "prompt_hash": ["p1"], "sampling_hash": ["s1"], "output": ["old"]}
    )
    write_deltalake(str(path), old.to_arrow(), mode="append")
    cache = PredictionCache(path)
    assert cache.lookup(M1, "s1", ["p1"]).outputs == {}
    _write(cache, M1, [("p1", "new")])
    assert cache.lookup(M1, "s1", ["p1"]).outputs == {"p1": "new"}
    legacy = tmp_path / "cache.legacy-v1"
    assert pl.read_delta(str(legacy))["output"].to_list() == ["old"], "moved, never deleted"
    assert DeltaTable(str(path)).metadata().partition_columns == [PARTITION]


CREATOR = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from resources.prediction_cache import CachedPrediction, PredictionCache
    path, who, go = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    time.sleep(max(0.0, go - time.time()))
    cache = PredictionCache(path)
    cache.write(model_identity="sha256:" + "1" * 64, model_hash="w", sampling_hash="s", suite="x", engine="e",
                entries=[CachedPrediction("p-" + who, who, who)])
    print("ok", who)
    """
)


def _processes(
    script: str, args: list[list[str]], timeout: float = 300
) -> list[subprocess.CompletedProcess[str]]:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *a],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for a in args
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def test_first_writers_racing_to_create_the_table_all_succeed(tmp_path: Path) -> None:
    go = time.time() + 4  # every process imports first, then all write at once
    runs = _processes(CREATOR, [[str(tmp_path / "cache"), str(n), str(go)] for n in range(4)])
    assert [r.returncode for r in runs] == [0] * 4, [r.stderr[-1500:] for r in runs]
    table = pl.read_delta(str(tmp_path / "cache"))
    assert sorted(table["output"].to_list()) == ["0", "1", "2", "3"]


WRITER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from eval_assets.predict import predict_suite
    from eval_assets.suites import load_suite_specs
    from eval_assets.suites.items import GenerationItem
    from resources.prediction_cache import PredictionCache

    path, who, go, mode, order = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
    spec = load_suite_specs()["humaneval"]  # sampled: each sample's seed is part of what the fake returns

    class Fake:
        engine = "fake-engine"
        def render_chat(self, messages): return "\\n".join(c for _, c in messages)
        def generate(self, prompts, params, progress=None, seeds=None):
            time.sleep(0.01)
            tag = who if mode == "differing" else "same"
            return [f"{p}|seed={s}|{tag}" for p, s in zip(prompts, seeds)]
        def loglikelihood(self, requests, progress=None): raise AssertionError
        def close(self): pass

    items = [GenerationItem(f"task{i}#{k}", (("user", f"problem {i}"),), "", sample=k)
             for i in range(40) for k in range(2)]
    if order == "reversed":
        items = items[::-1]
    time.sleep(max(0.0, go - time.time()))
    frame, stats = predict_suite(checkpoint=who, model_hash="sha256:w", tokenizer_hash="sha256:t",
                                 config_hash="sha256:c", spec=spec, items=items, cache=PredictionCache(path),
                                 engine="fake-engine", open_backend=Fake, chunk_size=3)
    print(json.dumps({"outputs": dict(zip(frame["item_id"], frame["output"])),
                      "cached": dict(zip(frame["item_id"], frame["cached"])), "differing": stats.differing}))
    """
)


def _race(tmp_path: Path, mode: str) -> tuple[pl.DataFrame, list[dict[str, object]]]:
    go = time.time() + 5
    runs = _processes(
        WRITER,
        [
            [str(tmp_path / "cache"), who, str(go), mode, order]
            for who, order in (("a", "forward"), ("b", "reversed"))
        ],
    )
    assert [r.returncode for r in runs] == [0, 0], [r.stderr[-2000:] for r in runs]
    return pl.read_delta(str(tmp_path / "cache")), [
        json.loads(r.stdout.strip().splitlines()[-1]) for r in runs
    ]


@pytest.mark.slow
def test_two_processes_writing_one_cache_lose_duplicate_or_differ_on_nothing(tmp_path: Path) -> None:
    table, results = _race(tmp_path, "same")
    keys = table.select("model_identity", "prompt_hash", "sampling_hash")
    assert table.height == 80 and keys.n_unique() == 80, "every key once: none lost, none duplicated"
    assert all(json.loads(out)["text"].endswith("|same") for out in table["output"])
    a, b = results
    assert a["outputs"] == b["outputs"], "both runs serve the same outputs"
    assert a["differing"] == b["differing"] == 0
    by_item = dict(zip(table["item_id"], table["output"], strict=True))
    assert all(by_item[item] == output for item, output in a["outputs"].items())  # type: ignore[attr-defined]


@pytest.mark.slow
def test_concurrent_runs_computing_different_outputs_serve_the_first_committed(tmp_path: Path) -> None:
    table, results = _race(tmp_path, "differing")
    assert table.height == 80 and table["prompt_hash"].n_unique() == 80
    committed = dict(zip(table["item_id"], table["output"], strict=True))
    for who, result in zip("ab", results, strict=True):
        outputs, cached = result["outputs"], result["cached"]
        assert outputs == committed, f"run {who} serves the committed outputs, never its own differing ones"
        lost = [
            item for item, out in outputs.items()  # type: ignore[attr-defined]
            if not cached[item] and not json.loads(out)["text"].endswith(f"|{who}")  # type: ignore[index]
        ]  # fmt: skip
        assert result["differing"] == len(lost), "each differing output it computed is reported"


def _frame(checkpoint: str, suite: str, values: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"checkpoint": [checkpoint] * len(values), "suite": [suite] * len(values), "v": values}
    )


def test_replace_touches_only_its_checkpoint_and_suite(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.replace("scores", _frame("a", "s1", [1, 2]), checkpoint="a", suite="s1")
    store.replace("scores", _frame("a", "s2", [3]), checkpoint="a", suite="s2")
    store.replace("scores", _frame("b", "s1", [4]), checkpoint="b", suite="s1")
    store.replace("scores", _frame("a", "s1", [9]), checkpoint="a", suite="s1")
    table = store.read("scores").sort(["checkpoint", "suite", "v"])
    assert table.select("checkpoint", "suite", "v").rows() == [("a", "s1", 9), ("a", "s2", 3), ("b", "s1", 4)]
    assert (tmp_path / "scores" / "checkpoint=a").is_dir(), "partitioned by checkpoint on disk"
    with pytest.raises(ValueError, match="must all belong"):
        store.replace("scores", _frame("b", "s1", [1]), checkpoint="a", suite="s1")
    with pytest.raises(ValueError, match="unknown results table"):
        store.read("nope")


def test_a_new_column_merges_into_an_existing_table(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.replace("scores", _frame("a", "s1", [1]), checkpoint="a", suite="s1")
    wider = _frame("b", "s1", [2]).with_columns(pl.lit("x").alias("details"))
    store.replace("scores", wider, checkpoint="b", suite="s1")
    table = store.read("scores").sort("checkpoint")
    assert table["details"].to_list() == [None, "x"]


def _replace_scores(root: str, checkpoint: str, rounds: int) -> None:
    from resources.results_store import ResultsStore as Store

    store = Store(Path(root))
    for value in range(rounds):
        store.replace("scores", _frame(checkpoint, "s1", [value]), checkpoint=checkpoint, suite="s1")
        store.record_decision(
            checkpoint=checkpoint,
            suite="s1",
            rule="r",
            outcome="pass",
            blocking=False,
            reason="x",
            policy_version=1,
            policy_hash="p",
            run_id=f"{checkpoint}-{value}",
        )


def test_concurrent_processes_writing_one_home_lose_nothing(tmp_path: Path) -> None:
    """Three processes (two `evalgate evaluate` runs and the daemon, say) race to create and write the same
    tables: every write lands, each (checkpoint, suite) holds its last rows, the append-only history all rows."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_replace_scores, args=(str(tmp_path), name, 4)) for name in ("a", "b", "c")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
    assert [writer.exitcode for writer in writers] == [0, 0, 0]
    store = ResultsStore(tmp_path)
    assert sorted(store.read("scores").select("checkpoint", "v").rows()) == [("a", 3), ("b", 3), ("c", 3)]
    decisions = store.read("gate_decisions")
    assert decisions.height == 12 and decisions["run_id"].n_unique() == 12
