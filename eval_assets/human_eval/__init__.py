"""Sampled human evaluation: which items people label and why, their labels, and how well machines agree
with them. Pure functions over polars frames; the Delta I/O is in :class:`HumanEvalStore`."""

from ._agreement import (
    Agreement,
    agreement_frame,
    between_raters,
    classifier_vs_humans,
    consensus,
    judge_vs_humans,
    scorer_vs_humans,
)
from ._content import attach_content, output_text, prompt_text
from ._policy import SamplingPolicy, load_sampling_policy
from ._sampling import (
    SAMPLE_SCHEMA,
    allocate,
    checkpoint_strata,
    combined_verdicts,
    draw_sample,
    generation_strata,
    pairwise_strata,
    refusal_strata,
)
from ._store import LABEL_SCHEMA, LABELS, HumanEvalStore, check_label, labels_for, latest_labels, read_frame
from ._trust import (
    MIN_HUMAN_LABELS,
    HumanAgreement,
    agreement_table,
    classifier_human_agreement,
    in_house_per_suite,
    judge_human_agreement,
    read_labelled,
    trusted_kappa,
    trusted_over_suites,
)

__all__ = [
    "LABELS",
    "LABEL_SCHEMA",
    "MIN_HUMAN_LABELS",
    "SAMPLE_SCHEMA",
    "Agreement",
    "HumanAgreement",
    "HumanEvalStore",
    "SamplingPolicy",
    "agreement_frame",
    "agreement_table",
    "allocate",
    "attach_content",
    "between_raters",
    "check_label",
    "checkpoint_strata",
    "classifier_human_agreement",
    "classifier_vs_humans",
    "combined_verdicts",
    "consensus",
    "draw_sample",
    "generation_strata",
    "in_house_per_suite",
    "judge_human_agreement",
    "judge_vs_humans",
    "labels_for",
    "latest_labels",
    "load_sampling_policy",
    "output_text",
    "pairwise_strata",
    "prompt_text",
    "read_frame",
    "read_labelled",
    "refusal_strata",
    "scorer_vs_humans",
    "trusted_kappa",
    "trusted_over_suites",
]
