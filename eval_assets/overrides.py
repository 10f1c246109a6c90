"""Override records: the one way besides the gate to move production, and only over named rules.

An override is a YAML file ``<overrides dir>/<checkpoint>.yaml``, committed to the team's repository after
review: the checkpoint and its ``model_hash``, the rules it overrides, a justification, the pull-request URL,
the approver and an expiry. The gate (``promotion``) reads it when a blocking rule failed and promotes only
when the record is valid, covers every failed rule, and (by policy) is committed and unmodified in git. The
authority recorded with the move is the file's path, content hash and commit.
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from eval_assets.gate import OverridePolicy, OverrideStatus
from eval_assets.yaml_models import parse_yaml_model

OVERRIDE_VERSION = 1


class OverrideError(ValueError):
    """An override file is malformed; the message names the file and the field."""


class OverrideRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=OVERRIDE_VERSION, ge=1, le=OVERRIDE_VERSION)
    checkpoint: str
    model_hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    rules: tuple[str, ...] = Field(min_length=1, description="the gate rules (or `rollback`) this lifts")
    justification: str
    pull_request: str
    approver: str
    expires: date
    created_by: str = ""
    created_at: str = ""

    @field_validator("justification", "approver")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("pull_request")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or len(value) < 12:
            raise ValueError("must be the URL of the pull request that reviewed this override (https://…)")
        return value


def override_path(directory: Path, checkpoint: str) -> Path:
    return directory / f"{checkpoint}.yaml"


def load_override(file: Path) -> OverrideRecord:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise OverrideError(f"{file}: cannot read the override record ({exc})") from exc
    return parse_yaml_model(
        OverrideRecord, text, source=str(file), what="override record", error=OverrideError
    )


def write_override(directory: Path, record: OverrideRecord) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    file = override_path(directory, record.checkpoint)
    if file.exists():
        raise OverrideError(f"{file} exists already: edit it in a reviewed change, or remove it first")
    body = record.model_dump(mode="json")
    file.write_text(
        "# Override record: lifts the named gate rules for this checkpoint. Commit it through a reviewed pull\n"
        "# request; the gate refuses it uncommitted, modified, expired, or for other weights.\n"
        + yaml.safe_dump(body, sort_keys=False),
        encoding="utf-8",
    )
    return file


def git_commit_of(file: Path) -> tuple[str | None, str]:
    """(commit, problem): the last commit of ``file`` when it is tracked and unmodified in its git work tree."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(file.parent), *args], capture_output=True, text=True, timeout=30, check=False
        )

    try:
        inside = git("rev-parse", "--is-inside-work-tree")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot run git to check that it is committed ({exc})"
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return (
            None,
            f"{file.parent} is not in a git repository: commit override records through a reviewed change",
        )
    if git("ls-files", "--error-unmatch", file.name).returncode != 0:
        return None, "it is not committed (git add + commit it through a reviewed pull request)"
    if git("diff", "--quiet", "HEAD", "--", file.name).returncode != 0:
        return None, "it has uncommitted changes: the gate reads only what was committed"
    log = git("log", "-1", "--format=%H", "--", file.name)
    commit = log.stdout.strip()
    return (commit, "") if commit else (None, "it has no commit")


def validate_override(
    file: Path,
    *,
    checkpoint: str,
    model_hash: str,
    policy: OverridePolicy,
    known_rules: set[str],
    today: date | None = None,
) -> OverrideStatus:
    """Every reason ``file`` cannot lift a rule for ``checkpoint`` (none: valid)."""
    today = today or datetime.now(UTC).date()
    try:
        record = load_override(file)
    except OverrideError as exc:
        return OverrideStatus(path=str(file), authority="", rules=frozenset(), problems=(str(exc),))
    problems: list[str] = []
    if record.checkpoint != checkpoint:
        problems.append(f"it names checkpoint {record.checkpoint!r}, not {checkpoint!r}")
    if record.model_hash != model_hash:
        problems.append(
            f"its model_hash {record.model_hash} is not {checkpoint}'s weights ({model_hash}): an override "
            "names exact weights; write a new record for new weights"
        )
    if record.expires < today:
        problems.append(f"it expired on {record.expires.isoformat()}")
    if record.expires > today + timedelta(days=policy.max_days):
        problems.append(
            f"it expires {record.expires.isoformat()}, more than {policy.max_days} days away (policy)"
        )
    unknown = sorted(set(record.rules) - known_rules)
    if unknown:
        problems.append(f"it names unknown rule(s) {unknown}; the rules are {sorted(known_rules)}")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    commit = None
    if policy.require_committed:
        commit, problem = git_commit_of(file)
        if problem:
            problems.append(problem)
    authority = f"{file} sha256:{digest}" + (f" commit {commit}" if commit else "")
    return OverrideStatus(
        path=str(file), authority=authority, rules=frozenset(record.rules), problems=tuple(problems)
    )
