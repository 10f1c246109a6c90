"""Progress of long work, for the console: predictions, the judge's verdicts, sandbox runs.

The work reports :class:`Progress` events through :func:`emit_progress`; whoever shows them (the CLI's display,
:mod:`eval_assets.console`) listens within :func:`observe_progress`. Nothing listens inside a daemon run, so the
events cost nothing there; the Dagster assets log their own lines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

Phase = Literal["start", "loading", "loaded", "chunk", "done"]
PREDICTIONS = "predictions"


@dataclass(frozen=True)
class Progress:
    """Where one suite's ``task`` stands. ``phase``: ``start`` (the cache was read: ``cache_hits`` of ``items``
    served), ``loading`` (a model is being opened: misses remain), ``loaded``, ``chunk`` (``computed`` of
    ``to_compute`` done), ``done``. ``unit`` names what is counted (items, judgements, runs)."""

    checkpoint: str
    suite: str
    phase: Phase
    items: int
    cache_hits: int
    to_compute: int
    computed: int = 0
    task: str = PREDICTIONS
    unit: str = "items"

    @property
    def items_done(self) -> int:
        """Done so far: the cache hits, then the computed ones (all once done)."""
        if self.phase == "done":
            return self.items
        return min(self.items, self.cache_hits + self.computed)

    @property
    def label(self) -> str:
        """How a display names the work: the suite for its predictions, else ``<suite> <task>``."""
        return self.suite if self.task == PREDICTIONS else f"{self.suite} {self.task}"


ProgressListener = Callable[[Progress], None]
_LISTENERS: ContextVar[tuple[ProgressListener, ...]] = ContextVar("evalgate_progress", default=())


@contextmanager
def observe_progress(listener: ProgressListener) -> Iterator[None]:
    """Within the block, every progress event in this context also reaches ``listener``."""
    token = _LISTENERS.set((*_LISTENERS.get(), listener))
    try:
        yield
    finally:
        _LISTENERS.reset(token)


def emit_progress(event: Progress) -> None:
    for listener in _LISTENERS.get():
        listener(event)


def counter(
    checkpoint: str, suite: str, task: str, unit: str, *, total: int, cache_hits: int
) -> Callable[[int], None]:
    """Emit ``start`` now, and return ``done(computed)`` that emits ``chunk`` (``done`` once all
    ``total - cache_hits`` are computed): for work that reports a running count. ``done`` may be called from
    worker threads (the sandbox pool's): it reports to the listeners of the context that made the counter, one
    event at a time."""
    to_compute = total - cache_hits
    listeners = _LISTENERS.get()
    lock = threading.Lock()

    def emit(phase: Phase, computed: int = 0) -> None:
        event = Progress(checkpoint, suite, phase, total, cache_hits, to_compute, computed, task, unit)
        with lock:
            for listener in listeners:
                listener(event)

    emit("start")
    if to_compute == 0:
        emit("done")

    def done(computed: int) -> None:
        emit("done" if computed >= to_compute else "chunk", computed)

    return done
