"""Red-team suites: harmful behaviours from the data packages crossed with versioned jailbreak wrappers in
families (:mod:`.sources`, :mod:`.wrappers`), the benign over-refusal prompts (:mod:`.benign`), their loaders
(:mod:`.loader`: ``redteam_harmful``, ``redteam_benign``) and the refusal metrics with Wilson intervals
(:mod:`.metrics`). The kinds that judge the completions are in :mod:`eval_assets.kinds.refusal`."""
