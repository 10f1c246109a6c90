"""The built-in scorers, one module per family. Each module builds a :class:`~eval_assets.kinds.ScorerEntry`
and registers it; :mod:`eval_assets.kinds._builtin` lists the modules (one line each)."""
