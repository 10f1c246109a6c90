"""The built-in components, one module per line: each registers its kind, scorer or loader when imported.
Adding a component is its module plus one line here (a plugin package uses the entry-point group instead)."""

BUILTIN_MODULES = (
    # suite kinds (each with its model request, scoring and extra stages)
    "eval_assets.kinds.likelihood",
    "eval_assets.kinds.generation",
    "eval_assets.kinds.code",  # also the pass_at_k scorer and the code_executions stage
    "eval_assets.kinds.pairwise",  # also the win_rate scorer and the judge_verdicts stage
    "eval_assets.kinds.refusal",  # refusal_harmful, refusal_benign: the refusal_label scorer, refusal_labels stage
    # scorers
    "eval_assets.kinds.scorers.choice",  # acc
    "eval_assets.kinds.scorers.match",  # exact_match, contains
    "eval_assets.kinds.scorers.regex",  # regex
    "eval_assets.kinds.scorers.numeric",  # numeric
    # loaders
    "eval_assets.suites.arc",  # arc_easy
    "eval_assets.suites.mmlu",  # mmlu
    "eval_assets.suites.gsm8k",  # gsm8k
    "eval_assets.suites.code",  # humaneval, mbpp
    "eval_assets.suites.file_loader",  # file: a user's JSONL / CSV / Parquet / Arrow file
    "eval_assets.suites.lm_eval_loader",  # lm_eval: any lm-eval task, offline
    "eval_assets.suites.mtbench",  # mtbench: MT-Bench's 80 questions, first turn (pairwise)
    "eval_assets.redteam.loader",  # redteam_harmful (behaviours × jailbreak wrappers), redteam_benign
)
