"""``evalgate suites list`` and ``evalgate suites check PATH`` (through :mod:`eval_assets.cli_suites`, the module
``cli.py`` mounts with ``add_suites_commands``)."""

import argparse
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from eval_assets.cli_suites import add_suites_commands, main, one_line


def write_suite(directory: Path, name: str = "capitals", **overrides: object) -> Path:
    data = directory / "capitals.jsonl"
    data.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [{"q": "Capital of France?", "a": "Paris"}, {"q": "Capital of Italy?", "a": "Rome"}]
        )
    )
    spec = {
        "name": name, "version": 3, "description": "capitals", "kind": "generation", "loader": "file",
        "metric": "exact_match", "scorer": {"answer": "first_line"}, "scorer_version": 1,
        "template": {"version": 1, "format": "Q: {question}\nA:"}, "sampling": {"max_new_tokens": 8},
        "data": {"file": {"path": data.name, "sha256": hashlib.sha256(data.read_bytes()).hexdigest()},
                 "fields": {"question": "q", "gold": "a"}},
        "profiles": {"smoke": {"limit": 1}, "full": {}},
    } | overrides  # fmt: skip
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_check_a_good_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(tmp_path)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: ok: suite capitals v3 (generation, loader file, metric exact_match)" in out
    assert "items: 2 in all; per profile: smoke 1, full 2" in out
    assert "| Q: Capital of" in out and "gold: " in out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"metric": "exact"}, "field `metric`: Value error, unknown metric 'exact'; registered metrics:"),
        (
            {"kind": "chat"},
            "field `kind`: Value error, unknown suite kind 'chat'; registered kinds: code, generation, likelihood",
        ),
        ({"sampling": None}, "a generation suite needs a `sampling` section"),
        ({"scorer": {"answer": "last_word"}}, "field `scorer.answer`:"),
        (
            {
                "data": {
                    "file": {"path": "capitals.jsonl", "sha256": "b" * 64},
                    "fields": {"question": "q", "gold": "a"},
                }
            },
            "field `data.file.sha256`",
        ),
        (
            {
                "data": {
                    "file": {"path": "nowhere.jsonl", "sha256": "b" * 64},
                    "fields": {"question": "q", "gold": "a"},
                }
            },
            "nowhere.jsonl: no such file (field `data.file`",
        ),
        ({"name": "arc_easy"}, "field `name`: 'arc_easy' is a built-in suite"),
    ],
)
def test_check_a_bad_spec_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], expected: str
) -> None:
    name = str(change.get("name", "capitals"))
    path = write_suite(tmp_path, **change)
    if name != "capitals":
        path = path.rename(tmp_path / f"{name}.yaml")
    assert main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("evalgate: error: ") and expected in lines[0], lines[0]
    assert str(tmp_path) in lines[0]


def test_check_a_missing_field_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(tmp_path, data=None)
    data = tmp_path / "capitals.jsonl"
    data.write_text(json.dumps({"q": "x", "a": "y"}) + "\n" + json.dumps({"question": "x", "a": "y"}) + "\n")
    spec = yaml.safe_load(path.read_text())
    spec["data"] = {
        "file": {"path": data.name, "sha256": hashlib.sha256(data.read_bytes()).hexdigest()},
        "fields": {"question": "q", "gold": "a"},
    }
    path.write_text(yaml.safe_dump(spec))
    assert main(["check", str(path)]) == 2
    assert f"{data}:2: missing field `q` (named by `data.fields.question`)" in capsys.readouterr().err


def test_list_shows_builtin_and_user_suites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(tmp_path)
    assert main(["--suites-dir", str(tmp_path), "list", "--no-count"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line for line in out.splitlines() if line and not line.startswith(("suite", "-"))
    }
    assert {"arc_easy", "gsm8k", "humaneval", "mbpp", "mmlu", "capitals"} <= set(rows)
    assert "built-in (arc_easy.yaml)" in rows["arc_easy"]
    assert str(path) in rows["capitals"] and "generation" in rows["capitals"] and " 3 " in rows["capitals"]
    assert f"user suites: {tmp_path}" in out


def test_list_counts_items_per_profile(
    tmp_path: Path, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_suite(tmp_path)
    assert main(["--suites-dir", str(tmp_path), "--data-dir", str(data_root), "list"]) == 0
    out = capsys.readouterr().out
    assert "smoke 1, full 2" in out and "smoke 200, full 570" in out and "smoke 5×2, full 164×10" in out


def test_list_reports_a_broken_user_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_suite(tmp_path, metric="nope")
    assert main(["--suites-dir", str(tmp_path), "list", "--no-count"]) == 2
    assert "capitals.yaml: invalid suite spec: field `metric`" in capsys.readouterr().err


def test_the_commands_mount_on_a_parser_and_take_a_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = argparse.ArgumentParser(prog="evalgate")
    parser.add_argument("--home")
    add_suites_commands(parser.add_subparsers(dest="command", required=True))
    monkeypatch.setenv("EVALGATE_SUITES_DIR", str(tmp_path))
    write_suite(tmp_path)
    args = parser.parse_args(["--home", str(tmp_path / "home"), "suites", "list", "--no-count"])
    assert (
        getattr(args, "suites_dir", None) is None and args.func(args) == 0
    )  # $EVALGATE_SUITES_DIR, read now
    check = parser.parse_args(["suites", "check", str(tmp_path / "capitals.yaml")])
    assert check.func(check) == 0


def test_one_line_joins_a_validation_report() -> None:
    error = ValueError("x.yaml: invalid suite spec\n  field `a`: bad\n  field `b`: worse")
    assert one_line(error) == "x.yaml: invalid suite spec: field `a`: bad; field `b`: worse"


EXAMPLES = Path(__file__).parents[3] / "eval_assets" / "suites" / "examples"


@pytest.mark.parametrize("name", ["quiz", "sums"])
def test_the_shipped_examples_check(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(EXAMPLES / f"{name}.yaml")]) == 0
    assert f"ok: suite {name} v1" in capsys.readouterr().out


def test_a_suites_dir_given_before_the_command_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evalgate --suites-dir X suites list`: the top-level option of cli.py survives the subcommand's own."""
    parser = argparse.ArgumentParser(prog="evalgate")
    parser.add_argument("--suites-dir")
    add_suites_commands(parser.add_subparsers(dest="command", required=True))
    write_suite(tmp_path)
    args = parser.parse_args(["--suites-dir", str(tmp_path), "suites", "list", "--no-count"])
    assert args.suites_dir == str(tmp_path) and args.func(args) == 0
    assert "capitals" in capsys.readouterr().out
