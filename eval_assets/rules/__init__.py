"""The built-in gate rules, one module each. A new rule is a module that calls
:func:`eval_assets.gate.register_rule`, plus one import line here."""

from eval_assets.rules import error_rate, judge, refusal, regression

__all__ = ["error_rate", "judge", "refusal", "regression"]
