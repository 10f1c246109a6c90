"""What the CLI shows while it works: one progress display per suite, and library noise kept off the console.

A terminal gets a live `rich` progress bar per suite and task (predictions, the judge's verdicts, sandbox runs:
done, cache hits, rate, ETA; a spinner while the model loads). Anything else (a pipe, a CI log) gets plain lines: one when a
suite starts, one when its model starts loading, one at most every ``interval`` seconds while items are
computed, and one when it is done. Both read :class:`eval_assets.progress.Progress` events.
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
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Progress_

from eval_assets.progress import Progress, observe_progress

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

    def __call__(self, event: Progress) -> None:
        now = time.monotonic()
        name, unit = event.label, event.unit
        suite = self.clock.setdefault(name, _SuiteClock(started=now))
        if event.phase == "start":
            self.clock[name] = _SuiteClock(started=now)
            self._line(
                f"{name}: {event.items} {unit}, {event.cache_hits} cached, {event.to_compute} to compute"
            )
        elif event.phase == "loading":
            self._line(f"{name}: loading the model of {event.checkpoint}")
        elif event.phase == "loaded":
            suite.computing_since = now
            self._line(f"{name}: model ready in {now - suite.started:.0f} s")
        elif event.phase == "chunk" and event.computed == event.to_compute:
            pass  # the "done" line follows
        elif event.phase == "chunk" and (suite.last_line is None or now - suite.last_line >= self.interval):
            suite.last_line = now
            self._line(f"{name}: {self.status(event, now)}")
        elif event.phase == "done":
            self._line(
                f"{name}: {event.items}/{event.items} {unit} ({event.cache_hits} cached) in "
                f"{format_duration(now - suite.started)}"
            )

    def status(self, event: Progress, now: float) -> str:
        suite = self.clock[event.label]
        text = f"{event.items_done}/{event.items} {event.unit} ({event.cache_hits} cached)"
        elapsed = now - (suite.computing_since or suite.started)
        if event.computed and elapsed > 0:
            rate = event.computed / elapsed
            eta = (event.to_compute - event.computed) / rate
            text += f", {rate:.2f} {event.unit}/s, ETA {format_duration(eta)}"
        return text

    def _line(self, text: str) -> None:
        print(f"    {text}", file=self.stream, flush=True)


class RichProgress:
    """One live bar per suite and task on a terminal."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress_(
            SpinnerColumn(),
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}, {task.fields[hits]} cached"),
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

    def __call__(self, event: Progress) -> None:
        progress = self.progress
        name = event.label
        if event.phase == "start" or name not in self.tasks:
            self.tasks[name] = progress.add_task(
                name, total=event.items, completed=event.cache_hits, hits=event.cache_hits, rate="", note="",
                unit=event.unit,
            )  # fmt: skip
            self.computing_since[name] = time.monotonic()
        task = self.tasks[name]
        if event.phase == "loading":
            progress.update(task, note=f"loading the model of {event.checkpoint}…")
        elif event.phase == "loaded":
            self.computing_since[name] = time.monotonic()
            progress.update(task, note="")
        elif event.phase == "chunk":
            elapsed = time.monotonic() - self.computing_since.get(name, time.monotonic())
            rate = f"{event.computed / elapsed:.2f} {event.unit}/s" if elapsed > 0 else ""
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
