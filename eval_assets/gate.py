"""The promotion gate, pure: the versioned policy, the rule registry, verdicts, and the promotion decision.

A gate rule is a registered component (:class:`GateRule`): a typed policy section, a pure function from that
section and one asset's value to a :class:`RuleVerdict`, and the blocking asset check that carries it (built
generically in :mod:`eval_assets.defs.gate_checks`). The built-in rules live in :mod:`eval_assets.rules`, one
module each; adding a rule touches its module and one registry line there.

:func:`decide_promotion` is the only way the gate moves production: every expected check must be found, run
against the latest materialization under the asset's current code version and the current policy hash, and
(for rules that compare) against the current production checkpoint and model hash. A blocking failure of a
rule can be lifted only by a valid override record naming that rule; stale or missing evidence never can.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eval_assets.hashing import hash_value
from eval_assets.yaml_models import parse_yaml_model

Outcome = Literal["pass", "fail", "inconclusive", "no_production", "is_production"]
Target = Literal["comparison", "scores"]


class GatePolicyError(ValueError):
    """The gate policy file is malformed, or its content changed without a new version."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class RuleVerdict:
    rule: str
    suite: str
    outcome: Outcome
    blocking: bool
    observed: float
    low: float
    high: float
    threshold: float
    n: int
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)  # what the verdict rests on (e.g. production)

    @property
    def passed(self) -> bool:
        return not self.blocking

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateRule:
    """A registered gate rule.

    ``evaluate(section, value, policy, suite)`` is pure: ``section`` is the rule's typed policy section,
    ``value`` the target asset's output (the ``comparison/<suite>`` row or the ``scores/<suite>`` summary).
    ``compares_to_production`` rules must put ``production`` and ``production_model_hash`` in the verdict's
    evidence; promotion then requires them to be the current production's.
    """

    name: str
    check_name: str
    target: Target
    section: type[BaseModel]
    evaluate: Callable[[Any, Mapping[str, Any], GatePolicy, str], RuleVerdict]
    describe: Callable[[Any, GatePolicy, str], str]
    applies_to: Callable[[str], bool] = lambda _kind: True  # by suite kind
    compares_to_production: bool = False
    # A Dagster-blocking check stops everything downstream in its run. Rules whose failure should still let the
    # comparison run (and be seen) set this False: promotion refuses their failures all the same.
    blocks_downstream: bool = True


_RULES: dict[str, GateRule] = {}


def register_rule(rule: GateRule) -> GateRule:
    if rule.name in _RULES and _RULES[rule.name] is not rule:
        raise ValueError(f"gate rule {rule.name!r} is registered twice")
    _RULES[rule.name] = rule
    return rule


def registered_rules() -> dict[str, GateRule]:
    """Every registered rule, by name (the built-in ones are imported on first use)."""
    import eval_assets.rules  # noqa: F401  (registers the built-in rules)

    return dict(_RULES)


def overridable_rules() -> set[str]:
    """What an override record may name: every registered rule, and :data:`ROLLBACK`."""
    return set(registered_rules()) | {ROLLBACK}


class OverridePolicy(_Strict):
    require_committed: bool = Field(
        default=True,
        description="an override file counts only when committed, unmodified, in a git repository",
    )
    max_days: int = Field(default=30, gt=0, description="the longest an override may stay valid")


class SequentialPolicy(_Strict):
    """How the gate grows an inconclusive sample: planned looks (cumulative shared items) after the first one,
    with alpha spending so the false-block and false-pass rates hold across looks (:mod:`eval_assets.sequential`)."""

    stages: tuple[int, ...] = Field(default=(200, 500, 1000, 2000), min_length=1)
    max_items: int = Field(default=2000, gt=0, description="never grow past this many items (nor the suite)")
    spending: Literal["obrien_fleming", "pocock"] = "obrien_fleming"

    @model_validator(mode="after")
    def _increasing(self) -> SequentialPolicy:
        if any(b <= a for a, b in zip(self.stages, self.stages[1:], strict=False)) or self.stages[0] < 1:
            raise ValueError(
                f"`stages` must be strictly increasing positive item counts, got {list(self.stages)}"
            )
        return self


CORE_FIELDS = (
    "version", "confidence", "ci_method", "bootstrap_resamples", "seed", "power", "overrides", "sequential",
)  # fmt: skip


class GatePolicy(_Strict):
    version: int = Field(ge=1)
    confidence: float = Field(gt=0.5, lt=1.0)
    ci_method: Literal["newcombe", "bootstrap"] = "newcombe"
    bootstrap_resamples: int = Field(ge=1000)
    seed: int = 0
    power: float = Field(default=0.8, gt=0.0, lt=1.0)
    overrides: OverridePolicy = OverridePolicy()
    sequential: SequentialPolicy = SequentialPolicy()
    rules: dict[str, Any] = Field(default_factory=dict, description="rule name -> its typed policy section")

    @model_validator(mode="before")
    @classmethod
    def _rule_sections(cls, raw: Any) -> Any:
        """Every top-level key other than the core fields is a rule's section, validated by that rule."""
        if not isinstance(raw, dict) or "rules" in raw:
            return raw
        rules = registered_rules()
        core = {key: value for key, value in raw.items() if key in CORE_FIELDS}
        sections: dict[str, Any] = {}
        for key, value in raw.items():
            if key in CORE_FIELDS:
                continue
            if key not in rules:
                raise ValueError(
                    f"unknown policy section {key!r}: the registered gate rules are {sorted(rules)} "
                    f"(core fields: {list(CORE_FIELDS)})"
                )
            sections[key] = rules[key].section.model_validate(value or {})
        for name, rule in rules.items():
            if name not in sections:
                sections[name] = rule.section.model_validate({})
        return core | {"rules": sections}

    def section(self, rule: str) -> Any:
        return self.rules[rule]

    @property
    def code_version(self) -> str:
        """The policy hash: of its whole content, rule sections included. Recorded with every decision."""
        content = self.model_dump(mode="json", exclude={"rules"}) | {
            "rules": {name: section.model_dump(mode="json") for name, section in sorted(self.rules.items())}
        }
        return hash_value(content)[:16]

    @property
    def policy_hash(self) -> str:
        return self.code_version


def policy_path_from_env() -> Path | None:
    """``$EVALGATE_POLICY`` (read when called): a team's own policy file, kept in its repository."""
    value = os.environ.get("EVALGATE_POLICY")
    return Path(value).expanduser().resolve() if value else None


def load_gate_policy(path: Path | None = None) -> GatePolicy:
    """The gate policy: ``path``, or the packaged ``eval_assets/policy/gate.yaml``."""
    source = path or Path(str(resources.files("eval_assets.policy").joinpath("gate.yaml")))
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise GatePolicyError(f"{source}: cannot read the gate policy ({exc})") from exc
    return parse_yaml_model(GatePolicy, text, source=str(source), what="gate policy", error=GatePolicyError)


def check_policy_version(policy: GatePolicy, recorded: Mapping[int, set[str]]) -> None:
    """Refuse a policy whose content changed without a new ``version`` (``recorded``: every hash seen under
    each version in ``gate_decisions``)."""
    others = recorded.get(policy.version, set()) - {policy.policy_hash}
    if others:
        raise GatePolicyError(
            f"gate policy version {policy.version} was recorded with content hash {sorted(others)[0]}, but the "
            f"policy now hashes to {policy.policy_hash}: its content changed without a new version. Bump "
            "`version` in the policy file so decisions under the old and new thresholds stay distinguishable."
        )


@dataclass(frozen=True)
class Comparison:
    """A candidate against production on the items both have scores for."""

    suite: str
    candidate: str
    production: str | None
    n: int
    candidate_accuracy: float
    production_accuracy: float
    difference: float
    low: float
    high: float
    confidence: float
    method: str
    improvements: int  # candidate right, production wrong
    regressions: int  # candidate wrong, production right
    mcnemar_p: float
    mcnemar_method: str
    minimum_detectable_effect: float
    is_production: bool = False
    production_model_hash: str | None = None
    candidate_model_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- promotion -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckStatus:
    """What the event log says about one blocking check of a checkpoint, as re-read by ``promotion``."""

    suite: str
    check: str
    rule: str
    found: bool
    blocking_failure: bool  # failed with ERROR severity
    current: bool  # evaluated against the latest materialization of its asset
    reason: str
    outcome: str = ""  # the rule's outcome (pass, fail, inconclusive, ...), from the check's metadata
    code_version: str | None = None  # of the materialization the check evaluated
    expected_code_version: str | None = None  # of the asset in the definitions now
    policy_hash: str | None = None
    production: str | None = None  # the production the evidence was compared against
    production_model_hash: str | None = None
    compares_to_production: bool = False


@dataclass(frozen=True)
class ProductionRef:
    checkpoint: str
    model_hash: str


@dataclass(frozen=True)
class OverrideStatus:
    """An override record for the checkpoint, as validated (see :mod:`eval_assets.overrides`)."""

    path: str
    authority: str  # path, content hash and commit
    rules: frozenset[str]
    problems: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.problems


PromotionOutcome = Literal["promoted", "blocked", "awaiting_baseline", "already_production"]


@dataclass(frozen=True)
class PromotionDecision:
    outcome: PromotionOutcome
    reason: str
    checks: tuple[CheckStatus, ...]
    authority_kind: Literal["gate", "override"] = "gate"
    override: str = ""

    @property
    def moves_pointer(self) -> bool:
        return self.outcome == "promoted"


ROLLBACK = "rollback"  # the rule name an override lists to move production back to an earlier production


def evidence_problems(status: CheckStatus, production: ProductionRef, policy_hash: str) -> list[str]:
    """Why a check's result cannot count (missing, stale, or against another production or policy)."""
    where = f"{status.suite}: check {status.check}"
    if not status.found:
        return [f"{where} has no completed result for this checkpoint ({status.reason})"]
    problems = []
    if not status.current:
        problems.append(f"{where} ran against an older materialization; re-run the check")
    if status.expected_code_version is not None and status.code_version != status.expected_code_version:
        problems.append(
            f"{where} judged a result of code version {status.code_version}, the asset is now "
            f"{status.expected_code_version}; re-materialize it"
        )
    if status.policy_hash != policy_hash:
        problems.append(
            f"{where} was decided under policy {status.policy_hash}, the policy is now {policy_hash}"
        )
    if status.compares_to_production:
        if status.outcome == "no_production":
            problems.append(
                f"{where} compared against no production, but production is {production.checkpoint}"
            )
        elif (status.production, status.production_model_hash) != (
            production.checkpoint,
            production.model_hash,
        ):
            problems.append(
                f"{where} compared against {status.production} ({status.production_model_hash}), but production "
                f"is now {production.checkpoint} ({production.model_hash}); the comparison must be re-run"
            )
    return problems


def decide_promotion(
    checkpoint: str,
    production: ProductionRef | None,
    checks: list[CheckStatus],
    *,
    policy_hash: str,
    was_production: bool = False,
    override: OverrideStatus | None = None,
) -> PromotionDecision:
    """Promote only on complete, current evidence against the current production; see the module doc."""
    statuses = tuple(checks)
    if not checks:
        return PromotionDecision(
            "blocked", "no gate check applies to this checkpoint: nothing to decide on", statuses
        )
    if production is None:
        return PromotionDecision(
            "awaiting_baseline",
            "no production checkpoint yet; set the first one with `evalgate promote --baseline NAME`",
            statuses,
        )
    if production.checkpoint == checkpoint:
        return PromotionDecision("already_production", f"{checkpoint} is production", statuses)
    stale = [problem for status in checks for problem in evidence_problems(status, production, policy_hash)]
    if stale:
        return PromotionDecision("blocked", "evidence does not match: " + "; ".join(stale), statuses)
    failed = [s for s in checks if s.blocking_failure]
    lifted: set[str] = {s.rule for s in failed}
    if was_production:
        lifted.add(ROLLBACK)
    if not lifted:
        warnings = [f"{s.suite}: {s.reason}" for s in checks if s.outcome == "inconclusive"]
        reason = "every blocking check passed" + (f" (warnings: {'; '.join(warnings)})" if warnings else "")
        return PromotionDecision("promoted", reason, statuses)
    failures = [f"{s.suite}: {s.reason}" for s in failed]
    if was_production:
        failures.append(
            f"{checkpoint} was production before; moving back needs an override record listing `{ROLLBACK}`"
        )
    if override is None:
        return PromotionDecision("blocked", "; ".join(failures), statuses)
    if not override.valid:
        return PromotionDecision(
            "blocked", "; ".join(failures) + f"; override {override.path} refused: " + "; ".join(override.problems),
            statuses,
        )  # fmt: skip
    uncovered = sorted(lifted - override.rules)
    if uncovered:
        return PromotionDecision(
            "blocked",
            "; ".join(failures) + f"; override {override.path} does not cover {uncovered}",
            statuses,
        )
    return PromotionDecision(
        "promoted", f"promoted by override {override.authority} over: " + "; ".join(failures), statuses,
        authority_kind="override", override=override.authority,
    )  # fmt: skip
