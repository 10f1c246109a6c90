"""Task-specific suites from a YAML spec and a local data file (no code): multiple choice by likelihood and
generation, from JSONL, CSV or Parquet, pinned by sha256; errors that name the file, line and spec field."""

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from eval_assets.suites.file_loader import SuiteDataError
from eval_assets.suites.items import GenerationItem, LikelihoodItem
from eval_assets.suites.loaders import load_all_items, load_items
from eval_assets.suites.spec import (
    SuiteSpecError,
    load_suite_spec,
    load_suite_specs,
    suite_code_version,
    suite_specs_from,
)

#: The built-in suites' code versions per profile (since code versions cover one profile each): a change here is
#: a change of every dependent asset's version, so it must be deliberate.
BUILTIN_CODE_VERSIONS = {
    "arc_easy": {"smoke": "a484a39f0d91e2bd", "full": "79bbd290b6377c70"},
    "assistant_pairwise": {"smoke": "680cc4f626af7947", "full": "dfe7a50bad8bad5d"},
    "gsm8k": {"smoke": "02135f2a5d57e00e", "full": "1cfe484fac797e89"},
    "humaneval": {"smoke": "200ab98b4cc1588e", "full": "b7b44cabff385668"},
    "mbpp": {"smoke": "808d56c9c548ac83", "full": "9dd3b67a5025a3f5"},
    "mmlu": {"smoke": "fbed2074799d0b34", "full": "4d14258dc05221b8"},
    "mtbench": {"smoke": "31c77186f898c115", "full": "efc0dcdfa4ef1a18"},
    "redteam_benign": {"smoke": "b9de8d594320eefa", "full": "8eff004c1a6cc9d9"},
    "redteam_harmful": {"smoke": "dd11a174b1bcd17a", "full": "5788b5eaf752c69b"},
}

MC_ROWS = [
    {
        "id": "sky",
        "question": "What color is the sky on a clear day?",
        "choices": ["green", "blue", "red"],
        "answer": 1,
    },
    {
        "id": "spider",
        "question": "How many legs does a spider have?",
        "choices": ["six", "eight", "ten"],
        "answer": 1,
    },
    {
        "id": "fruit",
        "question": "Which one is a fruit?",
        "choices": ["apple", "carrot", "potato"],
        "answer": 0,
    },
]
SHOTS = [
    {
        "id": "ice",
        "question": "What is frozen water called?",
        "choices": ["ice", "steam", "sand"],
        "answer": 0,
    }
]
NO_DATA = Path("/nonexistent-data-root")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_spec(directory: Path, name: str, **fields: Any) -> Path:
    spec: dict[str, Any] = {
        "name": name, "version": 1, "description": f"{name} test suite", "scorer_version": 1,
        "template": {"version": 1}, "profiles": {"smoke": {"limit": 2}, "full": {}},
    }  # fmt: skip
    spec.update(fields)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def mc_spec(directory: Path, name: str = "mc", **overrides: Any) -> Path:
    data = write_jsonl(directory / "mc.jsonl", MC_ROWS)
    shots = write_jsonl(directory / "shots.jsonl", SHOTS)
    fields: dict[str, Any] = {
        "kind": "likelihood", "loader": "file", "metric": "acc",
        "data": {
            "file": {"path": data.name, "sha256": sha256(data)},
            "fewshot_file": {"path": shots.name, "sha256": sha256(shots)},
            "fields": {"id": "id", "question": "question", "choices": "choices", "gold": "answer"},
        },
        "template": {"version": 1, "num_fewshot": 1},
    }  # fmt: skip
    fields.update(overrides)
    return write_spec(directory, name, **fields)


def test_builtin_code_versions_are_unchanged() -> None:
    versions = {
        name: {profile: suite_code_version(spec, profile) for profile in ("smoke", "full")}
        for name, spec in load_suite_specs().items()
    }
    assert versions == BUILTIN_CODE_VERSIONS


def test_multiple_choice_from_jsonl_with_fewshot_file(tmp_path: Path) -> None:
    spec = load_suite_spec(mc_spec(tmp_path))
    items = load_all_items(spec, NO_DATA)
    assert [item.item_id for item in items] == ["sky", "spider", "fruit"]
    first = items[0]
    assert isinstance(first, LikelihoodItem)
    assert first.context == (
        "Question: What is frozen water called?\nAnswer: ice\n\nQuestion: What color is the sky on a clear day?\nAnswer:"
    )
    assert first.continuations == (" green", " blue", " red") and first.gold == 1
    assert len(load_items(spec, "smoke", NO_DATA)) == 2


def test_gold_as_label_letters_in_the_prompt(tmp_path: Path) -> None:
    rows = [dict(row, answer="ABC"[row["answer"]]) for row in MC_ROWS]
    data = write_jsonl(tmp_path / "letters.jsonl", rows)
    path = write_spec(
        tmp_path, "letters", kind="likelihood", loader="file", metric="acc",
        template={"version": 1, "format": "{question}\n{choice_lines}\nAnswer:", "choice_format": " {label}"},
        data={"file": {"path": data.name, "sha256": sha256(data)},
              "fields": {"question": "question", "choices": "choices", "gold": "answer", "gold_format": "label"}},
    )  # fmt: skip
    item = load_all_items(load_suite_spec(path), NO_DATA)[0]
    assert isinstance(item, LikelihoodItem)
    assert item.context == "What color is the sky on a clear day?\nA. green\nB. blue\nC. red\nAnswer:"
    assert item.continuations == (" A", " B", " C") and item.gold == 1
    assert item.item_id == "0", "without an id column, the row number is the id"


def test_csv_with_choice_columns_and_a_split_column(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "q", "a", "b", "gold"])
        writer.writerow(["train", "2 + 2?", "4", "5", "4"])
        writer.writerow(["test", "3 + 3?", "7", "6", "6"])
        writer.writerow(["test", "1 + 1?", "2", "3", "2"])
    spec_path = write_spec(
        tmp_path, "arith", kind="likelihood", loader="file", metric="acc",
        template={"version": 1, "num_fewshot": 1, "fewshot_sampler": "hashed"},
        data={"file": {"path": path.name, "sha256": sha256(path)}, "split_column": "split", "split": "test",
              "fewshot_split": "train", "fields": {"question": "q", "choices": ["a", "b"], "gold": "gold", "gold_format": "text"}},
    )  # fmt: skip
    items = load_all_items(load_suite_spec(spec_path), NO_DATA)
    assert len(items) == 2
    assert isinstance(items[0], LikelihoodItem)
    assert items[0].context == "Question: 2 + 2?\nAnswer: 4\n\nQuestion: 3 + 3?\nAnswer:"
    assert items[0].continuations == (" 7", " 6") and items[0].gold == 1


def test_parquet_generation_with_chat_fewshot(tmp_path: Path) -> None:
    table = pa.table({"question": ["What is 6 times 7?", "What is 2 plus 2?", "What is 10 minus 3?"], "answer": [42, 4, 7],
                      "split": ["test", "train", "test"]})  # fmt: skip
    path = tmp_path / "math.parquet"
    pq.write_table(table, path)
    spec_path = write_spec(
        tmp_path, "math", kind="generation", loader="file", metric="numeric",
        sampling={"max_new_tokens": 16}, scorer={"abs_tol": 0.5},
        template={"version": 1, "chat": True, "system": "Answer with a number.", "num_fewshot": 1,
                  "format": "{question}", "preamble": "Arithmetic.\n"},
        data={"file": {"path": path.name, "sha256": sha256(path)}, "split_column": "split", "split": "test",
              "fewshot_split": "train", "fields": {"question": "question", "gold": "answer"}},
    )  # fmt: skip
    items = load_all_items(load_suite_spec(spec_path), NO_DATA)
    assert [item.gold for item in items] == ["42", "7"]
    first = items[0]
    assert isinstance(first, GenerationItem)
    assert first.messages == (
        ("system", "Answer with a number."),
        ("user", "Arithmetic.\nWhat is 2 plus 2?"),
        ("assistant", "4"),
        ("user", "What is 6 times 7?"),
    )


def test_plain_generation_prompt_is_one_text(tmp_path: Path) -> None:
    data = write_jsonl(
        tmp_path / "qa.jsonl",
        [{"q": "Capital of France?", "a": "Paris"}, {"q": "Capital of Italy?", "a": "Rome"}],
    )
    shots = write_jsonl(tmp_path / "qa_shots.jsonl", [{"q": "Capital of Spain?", "a": "Madrid"}])
    spec_path = write_spec(
        tmp_path, "capitals", kind="generation", loader="file", metric="regex",
        sampling={"max_new_tokens": 8, "stop": ["\n"]}, scorer={"pattern": r"^\s*(\w+)"},
        template={"version": 1, "num_fewshot": 1, "format": "Q: {question}\nA:"},
        data={"file": {"path": data.name, "sha256": sha256(data)}, "fewshot_file": {"path": shots.name, "sha256": sha256(shots)},
              "fields": {"question": "q", "gold": "a"}},
    )  # fmt: skip
    first = load_all_items(load_suite_spec(spec_path), NO_DATA)[0]
    assert isinstance(first, GenerationItem)
    assert first.messages == (("user", "Q: Capital of Spain?\nA: Madrid\n\nQ: Capital of France?\nA:"),)
    assert first.gold == "Paris"


def test_a_changed_data_file_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    spec = load_suite_spec(mc_spec(tmp_path))
    (tmp_path / "mc.jsonl").write_text((tmp_path / "mc.jsonl").read_text().replace("blue", "Blue"))
    with pytest.raises(SuiteDataError) as info:
        load_all_items(spec, NO_DATA)
    message = str(info.value)
    assert str(tmp_path / "mc.jsonl") in message and "field `data.file.sha256`" in message
    assert "put the new hash in the spec and bump the suite's `version`" in message


def test_a_missing_field_names_the_line(tmp_path: Path) -> None:
    rows = [MC_ROWS[0], {"id": "x", "prompt": "no question here", "choices": ["a", "b"], "answer": 0}]
    path = tmp_path / "mc.jsonl"
    path.write_text(
        json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n"
    )  # a blank line: line numbers stay true
    spec_path = write_spec(
        tmp_path, "broken", kind="likelihood", loader="file", metric="acc",
        data={"file": {"path": path.name, "sha256": sha256(path)}, "fields": {"question": "question", "choices": "choices", "gold": "answer"}},
    )  # fmt: skip
    with pytest.raises(
        SuiteDataError, match=r"mc\.jsonl:3: missing field `question` \(named by `data.fields.question`\)"
    ):
        load_all_items(load_suite_spec(spec_path), NO_DATA)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"question": "q", "choices": ["a", "b"], "answer": 2},
            r"gold 2 in `answer` is not a 0-based choice index below 2",
        ),
        (
            {"question": "q", "choices": "a|b", "answer": 0},
            r"field `choices` \(`data.fields.choices`\) holds str 'a\|b', not a list",
        ),
        (
            {"question": "", "choices": ["a", "b"], "answer": 0},
            r"field `question` \(`data.fields.question`\) is empty",
        ),
    ],
)
def test_bad_rows_are_located(tmp_path: Path, row: dict[str, Any], message: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [row])
    spec_path = write_spec(
        tmp_path, "bad", kind="likelihood", loader="file", metric="acc",
        data={"file": {"path": path.name, "sha256": sha256(path)}, "fields": {"question": "question", "choices": "choices", "gold": "answer"}},
    )  # fmt: skip
    with pytest.raises(SuiteDataError, match=r"bad\.jsonl:1: " + message):
        load_all_items(load_suite_spec(spec_path), NO_DATA)


def test_numeric_metric_checks_the_references_when_loading(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "n.jsonl", [{"q": "a", "a": "1"}, {"q": "b", "a": "many"}])
    spec_path = write_spec(
        tmp_path, "nums", kind="generation", loader="file", metric="numeric", sampling={"max_new_tokens": 4},
        data={"file": {"path": path.name, "sha256": sha256(path)}, "fields": {"question": "q", "gold": "a"}},
    )  # fmt: skip
    with pytest.raises(
        SuiteDataError,
        match=r"n\.jsonl:2: field `a` \(`data.fields.gold`\): the reference answer 'many' is not a number",
    ):
        load_all_items(load_suite_spec(spec_path), NO_DATA)


def test_missing_file_and_repeated_ids(tmp_path: Path) -> None:
    spec_path = mc_spec(tmp_path)
    (tmp_path / "shots.jsonl").unlink()
    with pytest.raises(SuiteDataError, match=r"shots\.jsonl: no such file \(field `data.fewshot_file`"):
        load_all_items(load_suite_spec(spec_path), NO_DATA)
    path = write_jsonl(tmp_path / "dup.jsonl", [MC_ROWS[0], MC_ROWS[0]])
    dup = write_spec(
        tmp_path, "dup", kind="likelihood", loader="file", metric="acc",
        data={"file": {"path": path.name, "sha256": sha256(path)}, "fields": {"id": "id", "question": "question", "choices": "choices", "gold": "answer"}},
    )  # fmt: skip
    with pytest.raises(SuiteDataError, match=r"dup\.jsonl:2: item id 'sky' repeats .*dup\.jsonl:1"):
        load_all_items(load_suite_spec(dup), NO_DATA)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {
                "data": {
                    "file": {"path": "mc.jsonl"},
                    "fields": {"question": "q", "choices": "c", "gold": "g"},
                }
            },
            "data.file",
            "`sha256` is required with `path`",
        ),
        (
            {
                "data": {
                    "file": {"path": "mc.txt", "sha256": "a" * 64},
                    "fields": {"question": "q", "choices": "c", "gold": "g"},
                }
            },
            "data.file",
            "cannot tell the format",
        ),
        (
            {
                "data": {
                    "file": {"path": "mc.jsonl", "sha256": "a" * 64},
                    "fields": {"question": "q", "gold": "g"},
                }
            },
            "data.fields.choices",
            "Field required",
        ),
        (
            {
                "data": {
                    "file": {"path": "mc.jsonl", "sha256": "a" * 64},
                    "fields": {"question": "q", "choices": "c", "gold": "g", "gold_fmt": "x"},
                }
            },
            "data.fields.gold_fmt",
            "Extra inputs",
        ),
        (
            {
                "data": {
                    "file": {"path": "mc.jsonl", "sha256": "a" * 64},
                    "fields": {"choices": "c", "gold": "g"},
                }
            },
            "template.format",
            "set `template.format`, or name the question column",
        ),
        (
            {
                "data": {
                    "file": {"path": "mc.jsonl", "sha256": "a" * 64},
                    "split": "test",
                    "fields": {"question": "q", "choices": "c", "gold": "g"},
                }
            },
            "data.split_column",
            "need `split_column`",
        ),
        (
            {
                "template": {"version": 1, "num_fewshot": 2},
                "data": {
                    "file": {"path": "mc.jsonl", "sha256": "a" * 64},
                    "fields": {"question": "q", "choices": "c", "gold": "g"},
                },
            },
            "template.num_fewshot",
            "need a pool",
        ),
        (
            {
                "template": {"version": 1, "format": "Q: {} A:"},
                "data": {
                    "file": {"path": "mc.jsonl", "sha256": "a" * 64},
                    "fields": {"question": "q", "choices": "c", "gold": "g"},
                },
            },
            "template.format",
            "use named fields",
        ),
        ({"data": None}, "data", "loader `file` needs a `data` section"),
        (
            {"loader": "arc_easy", "data": None, "template": {"version": 1, "format": "{question}"}},
            "template.format",
            "loader `arc_easy` renders its own prompt",
        ),
        ({"loader": "arc_easy"}, "data", "loader `arc_easy` takes no `data` section"),
    ],
)
def test_spec_errors_name_the_field(tmp_path: Path, change: dict[str, Any], field: str, message: str) -> None:
    path = mc_spec(tmp_path, **({"template": {"version": 1}} | change))
    with pytest.raises(SuiteSpecError) as info:
        load_suite_spec(path)
    assert str(path) in str(info.value)
    assert f"field `{field}`" in str(info.value) and message in str(info.value), str(info.value)


def test_code_version_follows_the_data_pin(tmp_path: Path) -> None:
    first = suite_code_version(load_suite_spec(mc_spec(tmp_path)), "smoke")
    again = suite_code_version(load_suite_spec(mc_spec(tmp_path)), "smoke")
    MC_ROWS.append({"id": "new", "question": "q?", "choices": ["a", "b"], "answer": 0})
    try:
        grown = suite_code_version(load_suite_spec(mc_spec(tmp_path)), "smoke")
    finally:
        MC_ROWS.pop()
    assert first == again != grown


def test_user_suites_from_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mc_spec(tmp_path)
    monkeypatch.delenv("EVALGATE_SUITES_DIR", raising=False)
    assert set(suite_specs_from(None)) == set(BUILTIN_CODE_VERSIONS)
    assert set(suite_specs_from(tmp_path)) == {*BUILTIN_CODE_VERSIONS, "mc"}
    monkeypatch.setenv("EVALGATE_SUITES_DIR", str(tmp_path))  # read when called, never at import
    specs = suite_specs_from(None)
    assert "mc" in specs and specs["mc"].source == (tmp_path / "mc.yaml").resolve()
    with pytest.raises(SuiteSpecError, match="does not exist"):
        suite_specs_from(tmp_path / "missing")


def test_a_user_spec_may_take_a_builtin_name_only_explicitly(tmp_path: Path) -> None:
    mc_spec(tmp_path, name="arc_easy")
    with pytest.raises(
        SuiteSpecError,
        match=r"arc_easy\.yaml: field `name`: 'arc_easy' is a built-in suite; .*replaces_builtin: true",
    ):
        suite_specs_from(tmp_path)
    mc_spec(tmp_path, name="arc_easy", replaces_builtin=True)
    replaced = suite_specs_from(tmp_path)["arc_easy"]
    assert replaced.loader == "file"
    other = tmp_path / "other"
    other.mkdir()
    mc_spec(other, name="mine", replaces_builtin=True)
    with pytest.raises(SuiteSpecError, match="field `replaces_builtin`: there is no built-in suite 'mine'"):
        suite_specs_from(other)


def test_replaces_builtin_does_not_enter_the_code_version(tmp_path: Path) -> None:
    plain = suite_code_version(load_suite_spec(mc_spec(tmp_path, name="same")), "smoke")
    flagged = suite_code_version(
        load_suite_spec(mc_spec(tmp_path, name="same", replaces_builtin=True)), "smoke"
    )
    assert plain == flagged
