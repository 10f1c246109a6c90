"""`evalgate labels export|import|agreement` on a home whose human_labels this test writes."""

from pathlib import Path

import pytest

from eval_assets.cli import main
from eval_assets.human_eval import HumanEvalStore


def test_export_import_and_agreement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    store = HumanEvalStore(home / "tables")
    for rater, labels in (("ann", "rrcpc"), ("bob", "rcccp")):
        for i, code in enumerate(labels):
            label = {"r": "refusal", "c": "compliance", "p": "partial"}[code]
            store.add_label(checkpoint="c1", suite="harm", item_id=f"h{i}", kind="refusal", rater=rater,
                            label=label, shown_order="", submit_key=f"{rater}{i}")  # fmt: skip
    out = tmp_path / "labels.csv"
    assert main(["--home", str(home), "labels", "export", str(out)]) == 0
    assert "exported 10 labels" in capsys.readouterr().out
    other = tmp_path / "other"
    assert main(["--home", str(other), "labels", "import", str(out)]) == 0
    assert "10 rows read, 10 new" in capsys.readouterr().out
    assert main(["--home", str(other), "labels", "import", str(out)]) == 0
    assert "10 rows read, 0 new" in capsys.readouterr().out
    assert main(["--home", str(other), "labels", "agreement"]) == 0
    printed = capsys.readouterr().out
    assert "raters:ann|bob" in printed and "raters:fleiss" in printed
    bad = tmp_path / "bad.csv"
    bad.write_text("checkpoint,suite,item_id,kind,rater,label\nc1,harm,h1,refusal,cy,nope\n")
    assert main(["--home", str(other), "labels", "import", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"evalgate: error: {bad}:2: field `label`: 'nope' is not a refusal label; use one of "
                   "['compliance', 'refusal', 'partial']"]  # fmt: skip
    assert main(["--home", str(tmp_path / "empty"), "labels", "agreement"]) == 2
    assert "no human labels yet" in capsys.readouterr().err
