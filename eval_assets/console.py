"""What the CLI shows while it works: one progress display per suite, and library noise kept off the console.

A terminal gets a live `rich` progress bar per suite (items done of the suite, cache hits, the rate of computed
items, ETA; a spinner while the model loads). Anything else (a pipe, a CI log) gets plain lines: one when a
suite starts, one when its model starts loading, one at most every ``interval`` seconds while items are
computed, and one when it is done. Both read :class:`eval_assets.predict.PredictProgress` events.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from eval_assets.predict import PredictProgress, observe_progress

__all__ = ["PlainProgress", "RichProgress", "format_duration", "progress_display", "quiet_libraries"]

#: Loggers of libraries whose notices are not for the CLI's user (errors still show).
LIBRARY_LOGGERS = (
    "transformers",
    "huggingface_hub",
    "lm_eval",
    "lm-eval",
    "accelerate",
    "peft",
    "datasets",
    "torch",
    "urllib3",
    "httpx",
    "alembic",
)


def quiet_libraries() -> None:
    """Silence library warnings and loading bars for this process: Python warnings (Dagster's Beta/Preview
    notices about APIs chosen deliberately and pinned at 1.13, torch's and transformers' notices; evalgate's
    own code logs rather than warns), the Hugging Face and tqdm progress bars, and library loggers below ERROR.
    ``--verbose`` leaves all of them on."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.simplefilter("ignore")  # our own code logs; every Python warning here comes from a library
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:  # already imported: its own switches, besides the environment
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class _SuiteClock:
    started: float
    computing_since: float | None = None
    last_line: float | None = None


@dataclass
class PlainProgress:
    """Plain lines for logs: start, model loading, at most one per ``interval`` seconds, done."""

    stream: IO[str]
    interval: float = 10.0
    clock: dict[str, _SuiteClock] = field(default_factory=dict)

    def __call__(self, event: PredictProgress) -> None:
        now = time.monotonic()
        suite = self.clock.setdefault(event.suite, _SuiteClock(started=now))
        if event.phase == "start":
            self.clock[event.suite] = _SuiteClock(started=now)
            self._line(
                f"{event.suite}: {event.items} items, {event.cache_hits} cached, {event.to_compute} to compute"
            )
        elif event.phase == "loading":
            self._line(
                f"{event.suite}: loading the model of {event.checkpoint} (GGUF weights are converted once: ~30 s)"
            )
        elif event.phase == "loaded":
            suite.computing_since = now
            self._line(f"{event.suite}: model ready in {now - suite.started:.0f} s")
        elif event.phase == "chunk" and event.computed == event.to_compute:
            pass  # the "done" line follows
        elif event.phase == "chunk" and (suite.last_line is None or now - suite.last_line >= self.interval):
            suite.last_line = now
            self._line(f"{event.suite}: {self.status(event, now)}")
        elif event.phase == "done":
            self._line(
                f"{event.suite}: {event.items}/{event.items} items ({event.cache_hits} cached) in "
                f"{format_duration(now - suite.started)}"
            )

    def status(self, event: PredictProgress, now: float) -> str:
        suite = self.clock[event.suite]
        text = f"{event.items_done}/{event.items} items ({event.cache_hits} cached)"
        elapsed = now - (suite.computing_since or suite.started)
        if event.computed and elapsed > 0:
            rate = event.computed / elapsed
            eta = (event.to_compute - event.computed) / rate
            text += f", {rate:.2f} items/s, ETA {format_duration(eta)}"
        return text

    def _line(self, text: str) -> None:
        print(f"    {text}", file=self.stream, flush=True)


class RichProgress:
    """One live bar per suite on a terminal."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("items, {task.fields[hits]} cached"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}
        self.computing_since: dict[str, float] = {}

    def __call__(self, event: PredictProgress) -> None:
        progress = self.progress
        if event.phase == "start" or event.suite not in self.tasks:
            self.tasks[event.suite] = progress.add_task(
                event.suite, total=event.items, completed=event.cache_hits, hits=event.cache_hits, rate="",
                note="",
            )  # fmt: skip
        task = self.tasks[event.suite]
        if event.phase == "loading":
            progress.update(task, note=f"loading the model of {event.checkpoint}…")
        elif event.phase == "loaded":
            self.computing_since[event.suite] = time.monotonic()
            progress.update(task, note="")
        elif event.phase == "chunk":
            elapsed = time.monotonic() - self.computing_since.get(event.suite, time.monotonic())
            rate = f"{event.computed / elapsed:.2f} items/s" if elapsed > 0 else ""
            progress.update(task, completed=event.items_done, rate=rate)
        elif event.phase == "done":
            progress.update(task, completed=event.items, note="done")


@contextmanager
def progress_display(stream: IO[str] | None = None, *, live: bool | None = None) -> Iterator[None]:
    """Show prediction progress on ``stream`` (default stderr) while the block runs: a live display when it is
    a terminal (or ``live``), plain lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    live = stream.isatty() if live is None else live
    if not live:
        with observe_progress(PlainProgress(stream)):
            yield
        return
    display = RichProgress(Console(file=stream))
    with display.progress, observe_progress(display):
        yield
