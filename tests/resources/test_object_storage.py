"""Results on object storage: every results store on a local S3-compatible server (moto), through deltalake's
and polars' own S3 clients; the location's validation; commits that cannot overwrite one another."""

import threading
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from s3_testing import S3Server, s3_server

from eval_assets.code import DeltaExecutionStore, open_execution_store
from eval_assets.paths import HomeLayout, results_location
from resources.evalgate import EvalgateHome
from resources.prediction_cache import CachedPrediction, PredictionCache
from resources.profile_results import ProfileResults
from resources.results_store import ResultsStore
from resources.table_location import TableLocation, TableLocationError
from sandboxes import ExecutionResult, Status

M1 = "sha256:" + "1" * 64


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        s3_server(monkeypatch, tmp_path_factory.mktemp("s3")) as server,
    ):
        yield server


@pytest.fixture
def bucket(s3: S3Server, request: pytest.FixtureRequest) -> str:
    name = "r-" + request.node.name.replace("_", "-")[:50].lower().strip("-")
    return s3.bucket(name)


def _frame(checkpoint: str, suite: str, score: float) -> pl.DataFrame:
    return pl.DataFrame({"checkpoint": [checkpoint], "suite": [suite], "score": [score]})


# -- the location -------------------------------------------------------------------------------------------
def test_location_parses_uris_and_local_paths(tmp_path: Path) -> None:
    local = TableLocation.of(tmp_path / "tables")
    assert not local.is_remote and local.local_path == tmp_path / "tables" and local.delta_options() is None
    assert TableLocation("file://" + str(tmp_path)).local_path == tmp_path
    remote = TableLocation("s3://bucket/prefix/", {"AWS_REGION": "eu-west-1"})
    assert (remote.uri, remote.scheme, remote.child("scores").uri) == (
        "s3://bucket/prefix",
        "s3",
        "s3://bucket/prefix/scores",
    )
    assert remote.delta_options() == {"AWS_REGION": "eu-west-1", "conditional_put": "etag"}, (
        "S3 commits are conditional"
    )
    assert "conditional_put" not in (remote.read_options() or {}), (
        "polars is not given deltalake-only options"
    )
    assert TableLocation("gs://b/t").delta_options() is None, "conditional puts are S3's setting only"
    assert TableLocation("az://container/t").is_remote


@pytest.mark.parametrize(
    ("root", "options", "message"),
    [
        ("s3://b/t", {"AWS_SECRET_ACCESS_KEY": "x"}, "is a credential"),
        ("s3://b/t", {"aws_session_token": "x"}, "is a credential"),
        ("az://c/t", {"azure_storage_account_key": "x"}, "is a credential"),
        ("s3://b/t", {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}, "silently lost"),
        ("ftp://host/t", {}, "not an object store"),
        ("", {}, "is empty"),
    ],
)
def test_location_refuses_secrets_unsafe_commits_and_unknown_schemes(
    root: str, options: dict[str, str], message: str
) -> None:
    with pytest.raises(TableLocationError, match=message):
        TableLocation(root, options)


def test_secrets_come_from_named_variables_and_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    location = TableLocation(
        "s3://b/t", {"AWS_REGION": "x"}, {"AWS_SECRET_ACCESS_KEY": "EVALGATE_TEST_S3_SECRET"}
    )
    with pytest.raises(TableLocationError, match=r"\$EVALGATE_TEST_S3_SECRET, which is not set"):
        location.delta_options()
    monkeypatch.setenv("EVALGATE_TEST_S3_SECRET", "hunter2")
    assert (location.delta_options() or {})["AWS_SECRET_ACCESS_KEY"] == "hunter2"
    assert "hunter2" not in repr(location) and "hunter2" not in str(location.child("scores"))
    home = EvalgateHome(
        home="/tmp/h",
        results_uri="s3://b/t",
        results_storage_secrets={"AWS_SECRET_ACCESS_KEY": "EVALGATE_TEST_S3_SECRET"},
    )
    assert "hunter2" not in repr(home) and "hunter2" not in str(home.tables())


def test_results_location_default_env_and_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = HomeLayout(tmp_path)
    monkeypatch.delenv("EVALGATE_RESULTS_URI", raising=False)
    assert results_location(layout).local_path == layout.tables
    monkeypatch.setenv("EVALGATE_RESULTS_URI", "s3://from-env/tables")
    assert results_location(layout).uri == "s3://from-env/tables"
    assert EvalgateHome(home=str(tmp_path), results_uri="gs://setting/t").results().root == "gs://setting/t"


# -- the stores on S3 ---------------------------------------------------------------------------------------
def test_results_tables_round_trip_on_s3(s3: S3Server, bucket: str) -> None:
    store = ResultsStore(TableLocation(bucket + "/tables", s3.options))
    store.replace("scores", _frame("a", "arc", 0.5), checkpoint="a", suite="arc")
    store.replace("scores", _frame("b", "arc", 0.25), checkpoint="b", suite="arc")
    store.replace("scores", _frame("a", "arc", 0.75), checkpoint="a", suite="arc")  # replaces a/arc only
    got = store.read("scores").sort("checkpoint")
    assert got.select("checkpoint", "score").rows() == [("a", 0.75), ("b", 0.25)]
    assert store.read("scores", checkpoint="b")["score"].to_list() == [0.25]
    store.record_decision(
        checkpoint="a",
        suite="arc",
        rule="regression",
        outcome="pass",
        blocking=True,
        reason="ok",
        policy_version=1,
        policy_hash="h",
        run_id="r",
    )
    assert store.read("gate_decisions")["reason"].to_list() == ["ok"]
    keys = s3.keys(bucket.removeprefix("s3://"), "tables/")
    assert any(k.startswith("tables/scores/checkpoint=a/") and k.endswith(".parquet") for k in keys), keys
    assert any(k.startswith("tables/gate_decisions/_delta_log/") for k in keys)
    profiles = ProfileResults(TableLocation(bucket + "/tables", s3.options))
    frame = _frame("a", "arc", 0.5).with_columns(pl.lit("smoke").alias("profile"))
    profiles.replace("scores_by_profile", frame, checkpoint="a", suite="arc", profile="smoke")
    assert profiles.read("scores_by_profile", profile="smoke")["score"].to_list() == [0.5]


def test_prediction_cache_on_s3(s3: S3Server, bucket: str) -> None:
    cache = PredictionCache(TableLocation(bucket + "/tables", s3.options) / "prediction_cache")
    entries = [CachedPrediction(f"p{i}", f"item-{i}", f"out{i}") for i in range(3)]
    written = cache.write(
        model_identity=M1, model_hash="w", sampling_hash="s", suite="x", engine="e", entries=entries
    )
    assert written.inserted == 3
    again = cache.write(
        model_identity=M1,
        model_hash="w",
        sampling_hash="s",
        suite="x",
        engine="e",
        entries=[CachedPrediction("p0", "item-0", "another output")],
    )
    assert again.inserted == 0 and again.committed == {"p0": "out0"} and len(again.differing) == 1
    assert cache.lookup(M1, "s", ["p0", "p2", "p9"]).outputs == {"p0": "out0", "p2": "out2"}
    assert all(uri.startswith(bucket + "/") for uri in cache.files(M1))
    assert cache.compact(min_files=1) and cache.count() == 3
    assert cache.lookup(M1, "s", ["p1"]).outputs == {"p1": "out1"}


def test_code_execution_cache_on_s3(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    assert type(open_execution_store(tmp_path)).__name__ == "SqliteExecutionStore", "local stays SQLite"
    store = open_execution_store(TableLocation(bucket + "/tables", s3.options))
    assert isinstance(store, DeltaExecutionStore)
    passed = ExecutionResult(status=Status.PASSED, exit_code=0, stdout="ok", sandbox="local")
    failed = ExecutionResult(status=Status.FAILED, exit_code=1, stderr="AssertionError", sandbox="local")
    store.put_many({"k1": passed, "k2": failed})
    store.put_many({"k2": passed})  # a key stored twice keeps the later result
    assert store.get_many(["k1", "k2", "k3"]) == {"k1": passed, "k2": passed}
    assert len(store) == 2


# -- concurrent writers -------------------------------------------------------------------------------------
def test_every_commit_is_conditional_and_concurrent_writers_lose_nothing(s3: S3Server, bucket: str) -> None:
    """Six writers at once: each Delta commit is a PUT with ``If-None-Match: *`` (the store refuses a second
    writer of one version: 412, and the loser retries on the next version), and every row is there after."""
    store = ResultsStore(TableLocation(bucket + "/tables", s3.options))
    store.replace("scores", _frame("seed", "s", 0.0), checkpoint="seed", suite="s")
    writers, rounds = 6, 2
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            start.wait()
            for round_ in range(rounds):
                name = f"c{index}-{round_}"
                store.replace("scores", _frame(name, "s", index + round_ / 10), checkpoint=name, suite="s")
                store.record_decision(
                    checkpoint=name,
                    suite="s",
                    rule="r",
                    outcome="pass",
                    blocking=True,
                    reason=name,
                    policy_version=1,
                    policy_hash="h",
                    run_id=name,
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    total = writers * rounds
    scores = store.read("scores")
    assert scores.height == total + 1 and scores["checkpoint"].n_unique() == total + 1, "a commit was lost"
    decisions = store.read("gate_decisions")
    assert sorted(decisions["reason"].to_list()) == sorted(
        f"c{i}-{r}" for i in range(writers) for r in range(rounds)
    )
    prefix = "/" + bucket.removeprefix("s3://") + "/tables/"
    commits = s3.log.commits(prefix)
    assert commits and all(c.if_none_match == "*" for c in commits), "a commit could overwrite another's"
    won = [c for c in commits if c.status == 200]
    assert len({c.path for c in won}) == len(won), "two writers won the same version"
    assert store.table_path("gate_decisions").table().version() == total - 1, "one version per append"


def test_the_server_refuses_a_second_writer_of_one_commit(s3: S3Server, bucket: str) -> None:
    """What the guarantee rests on: the S3 server answers a conditional PUT of an existing key with 412."""
    from botocore.exceptions import ClientError

    name = bucket.removeprefix("s3://")
    s3.client.put_object(
        Bucket=name, Key="t/_delta_log/00000000000000000000.json", Body=b"{}", IfNoneMatch="*"
    )
    with pytest.raises(ClientError, match="PreconditionFailed"):
        s3.client.put_object(
            Bucket=name, Key="t/_delta_log/00000000000000000000.json", Body=b"[]", IfNoneMatch="*"
        )


def test_append_if_absent_is_one_winner_among_concurrent_writers(s3: S3Server, bucket: str) -> None:
    """A production move's row is committed only if its sequence number is free: of several writers racing
    for one sequence (under no common lock), exactly one inserts."""
    store = ResultsStore(TableLocation(bucket + "/tables", s3.options))
    start = threading.Barrier(4)
    inserted: list[int] = []

    def writer(index: int) -> None:
        start.wait()
        inserted.append(
            store.record_decision(
                checkpoint=f"c{index}",
                suite="*",
                rule="production_move",
                outcome="gate",
                blocking=False,
                reason=f"writer {index}",
                policy_version=1,
                policy_hash="h",
                run_id="r",
                extra={"sequence": 1},
                unique_on=("rule", "sequence"),
            )
        )

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(inserted) == [0, 0, 0, 1]
    assert store.read("gate_decisions").height == 1
