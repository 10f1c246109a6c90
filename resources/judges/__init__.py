"""Judge backends behind one interface (:class:`eval_assets.judge.JudgeBackend`): Anthropic (Messages and Message
Batches), any OpenAI-compatible server, and the embedded default (a local model, no key, no network)."""
