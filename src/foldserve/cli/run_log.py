"""Progress of ``foldserve predict``: a live bar on a terminal, plain lines in a log file.

On a terminal the user watches a Rich progress bar. When stderr is a file or a pipe (SLURM,
nohup, CI) a bar draws nothing useful until the end, so each stage, model and recycle becomes
one plain line with the elapsed time instead. Either way every line also goes into the run's
``log.txt``, timestamped as ColabFold's log is.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from foldserve.fold.alphafold2.features import InputShape
from foldserve.fold.results import PredictOptions, ProgressCallback, ProgressEvent


class RunLog:
    """The lines of one run, kept for ``log.txt``; shown on stderr unless a bar is up."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.lines: list[str] = []
        self._started = time.monotonic()
        self._bar_up = False

    @property
    def plain(self) -> bool:
        """Whether progress is printed as lines (stderr is not a terminal)."""
        return not self.console.is_terminal

    def note(self, text: str, *, show: bool = True, markup: str | None = None) -> None:
        """Record ``text``; print it (as ``markup`` when given) unless ``show`` is False."""
        stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
        self.lines.append(f"{stamp} {text}")
        if show:
            self.console.print(markup or text, highlight=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        """Record and print a warning."""
        self.note(f"warning: {text}", markup=f"[yellow]warning:[/yellow] {escape(text)}")

    def progress_line(self, text: str) -> None:
        """A progress step: a line with the elapsed time when plain, else only the log."""
        elapsed = time.monotonic() - self._started
        self.note(f"[{elapsed:7.1f}s] {text}", show=self.plain)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @contextmanager
    def following(self, options: PredictOptions, shape: InputShape) -> Iterator[ProgressCallback]:
        """The callback that reports a prediction's events; a bar while it runs on a
        terminal."""
        if self.plain:
            yield lambda event: self._log_event(event, shape)
            return
        run_steps = options.num_recycles + 1
        steps = len(options.models) * options.num_seeds * run_steps
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=self.console,
        ) as bar:
            task = bar.add_task("features", total=steps)

            def show(event: ProgressEvent) -> None:
                self._log_event(event, shape)
                description = describe(event, shape)
                if event.stage == "predict" and event.recycle is not None:
                    # The engine says how many runs it makes (models x seeds, or seeds).
                    total = max(event.num_runs, 1) * run_steps
                    done = event.run_index * run_steps + event.recycle + 1
                    bar.update(task, total=total, completed=done, description=description)
                elif event.stage == "done":
                    bar.update(task, completed=bar.tasks[0].total, description=description)
                else:
                    bar.update(task, description=description)

            yield show

    def _log_event(self, event: ProgressEvent, shape: InputShape) -> None:
        self.progress_line(describe(event, shape))


def describe(event: ProgressEvent, shape: InputShape) -> str:
    """One progress event in words."""
    if event.stage == "compile":
        return f"compiling {event.model} for {shape.describe()}"
    if event.stage == "predict" and event.recycle is not None:
        # OpenFold3 scores its structures after the last recycle: its events carry none.
        scores = "" if event.mean_plddt is None else f"  pLDDT {event.mean_plddt:.1f}"
        scores += "" if event.ptm is None else f" pTM {event.ptm:.3f}"
        return (
            f"{event.model} seed {event.seed} (run {event.run_index + 1}/{event.num_runs}) "
            f"recycle {event.recycle}/{event.num_recycles}{scores}"
        )
    if event.stage == "done":
        return "done"
    return "building features"
