"""Override records: each way one can be wrong is refused with its reason; only a committed, current record for
the exact weights lifts the rules it names."""

import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from eval_assets.gate import OverridePolicy
from eval_assets.overrides import (
    OverrideError,
    OverrideRecord,
    load_override,
    validate_override,
    write_override,
)

HASH = "sha256:" + "a" * 64
TODAY = date(2026, 12, 1)
RULES = {"no_regression_vs_production", "error_rate", "rollback"}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "team-repo"
    (repo / "overrides").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    return repo


def _record(**update: object) -> OverrideRecord:
    fields: dict[str, object] = {
        "checkpoint": "cand", "model_hash": HASH, "rules": ("no_regression_vs_production",),
        "justification": "MMLU drop is a known tokenizer artifact, see the linked analysis",
        "pull_request": "https://git.example.com/team/evals/pull/42", "approver": "alice",
        "expires": (TODAY + timedelta(days=7)).isoformat(),
    }  # fmt: skip
    return OverrideRecord.model_validate(fields | update)


def _validate(file: Path, **kwargs: object) -> tuple[str, ...]:
    status = validate_override(
        file, checkpoint=str(kwargs.get("checkpoint", "cand")), model_hash=str(kwargs.get("model_hash", HASH)),
        policy=OverridePolicy(), known_rules=RULES, today=TODAY,
    )  # fmt: skip
    return status.problems


def _commit(repo: Path, file: Path) -> None:
    _git(repo, "add", str(file.relative_to(repo)))
    _git(repo, "commit", "-q", "-m", "override")


def test_a_committed_record_for_the_exact_weights_is_valid(repo: Path) -> None:
    file = write_override(repo / "overrides", _record())
    assert any("not committed" in p for p in _validate(file))
    _commit(repo, file)
    status = validate_override(
        file, checkpoint="cand", model_hash=HASH, policy=OverridePolicy(), known_rules=RULES, today=TODAY
    )
    assert status.valid and status.rules == {"no_regression_vs_production"}
    assert "commit " in status.authority and "sha256:" in status.authority


def test_a_mismatched_hash_is_refused(repo: Path) -> None:
    file = write_override(repo / "overrides", _record())
    _commit(repo, file)
    problems = _validate(file, model_hash="sha256:" + "b" * 64)
    assert len(problems) == 1 and "is not cand's weights" in problems[0]


def test_an_expired_record_is_refused(repo: Path) -> None:
    file = write_override(repo / "overrides", _record(expires=(TODAY - timedelta(days=1)).isoformat()))
    _commit(repo, file)
    assert _validate(file) == ("it expired on 2026-11-30",)


def test_a_record_valid_for_too_long_is_refused(repo: Path) -> None:
    file = write_override(repo / "overrides", _record(expires=(TODAY + timedelta(days=365)).isoformat()))
    _commit(repo, file)
    assert any("more than 30 days" in p for p in _validate(file))


def test_a_record_edited_after_its_commit_is_refused(repo: Path) -> None:
    file = write_override(repo / "overrides", _record())
    _commit(repo, file)
    file.write_text(file.read_text().replace("no_regression_vs_production", "error_rate"))
    assert any("uncommitted changes" in p for p in _validate(file))


def test_outside_a_git_repository_an_override_does_not_count(tmp_path: Path) -> None:
    file = write_override(tmp_path / "overrides", _record())
    assert any("not in a git repository" in p for p in _validate(file))


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"justification": "   "}, "justification"),
        ({"pull_request": ""}, "pull_request"),
        ({"pull_request": "see slack"}, "pull_request"),
        ({"rules": ()}, "rules"),
        ({"approver": ""}, "approver"),
    ],
)
def test_missing_justification_url_rules_or_approver_name_the_field(
    tmp_path: Path, update: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        _record(**update)
    file = tmp_path / "cand.yaml"
    body = _record().model_dump(mode="json") | update
    import yaml

    file.write_text(yaml.safe_dump(body))
    with pytest.raises(OverrideError, match=f"field `{field}`") as info:
        load_override(file)
    assert str(file) in str(info.value)
    problems = _validate(file)
    assert len(problems) == 1 and field in problems[0]


def test_an_unknown_rule_is_refused(repo: Path) -> None:
    file = write_override(repo / "overrides", _record(rules=("no_such_rule",)))
    _commit(repo, file)
    assert any("unknown rule" in p for p in _validate(file))


def test_an_existing_record_is_never_overwritten(repo: Path) -> None:
    write_override(repo / "overrides", _record())
    with pytest.raises(OverrideError, match="exists already"):
        write_override(repo / "overrides", _record())
