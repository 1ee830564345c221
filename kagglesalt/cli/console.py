"""The rich console and progress bars the CLI shares."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from kagglesalt.cli.flags import for_command_line
from kagglesalt.progress import Reporter

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    console=err_console, transient=False)


def download_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    console=err_console)


@contextlib.contextmanager
def downloading(description: str) -> Iterator[Callable[[int, int | None], None]]:
    """A byte progress bar that appears with the first bytes, so nothing flashes on the
    screen before an error such as missing credentials."""
    bar: Progress | None = None
    task: TaskID | None = None

    def update(done: int, total: int | None) -> None:
        nonlocal bar, task
        if bar is None or task is None:
            bar = download_bar()
            bar.start()
            task = bar.add_task(description, total=total)
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if bar is not None:
            bar.stop()


@contextlib.contextmanager
def counting(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar driven by callbacks `update(done, total)`."""
    with progress_bar() as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


class RichReporter(Reporter):
    """Shows training progress: a bar per running fold (epoch, loss, validation score, ETA;
    several at once when folds train in parallel) under an optional overall bar, and a line
    per epoch."""

    wants_batches = True  # each fold's bar moves with its batches

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.overall_task: TaskID | None = None
        self.folds: dict[int, TaskID] = {}  # fold -> its task
        self.steps: dict[int, int] = {}
        self.status: dict[int, str] = {}
        self.current = 0  # the fold whose batches arrive (local training)

    def _progress(self) -> Progress:
        if self.bar is None:
            self.bar = progress_bar()
            self.bar.start()
        return self.bar

    def _print(self, text: str) -> None:
        (self.bar.console if self.bar else err_console).print(text)

    def overall(self, description: str, total: float) -> None:
        """The overall bar, or its new total when the estimate changed."""
        if self.overall_task is None:
            self.overall_task = self._progress().add_task(escape(description), total=total)
        else:
            self._progress().update(self.overall_task, total=total,
                                    description=escape(description))

    def advance(self, units: float) -> None:
        if self.overall_task is not None:
            self._progress().update(self.overall_task, advance=units)

    @staticmethod
    def _name(fold: int, folds: int) -> str:
        return f"fold {fold + 1}/{folds}"

    def fold_start(self, fold: int, folds: int, epochs: int, steps: int) -> None:
        self.total_folds, self.current = folds, fold
        self.steps[fold], self.status[fold] = steps, ""
        self.folds[fold] = self._progress().add_task(self._name(fold, folds),
                                                     total=epochs * steps)

    def fold_epochs(self, fold: int, epochs: int, steps: int) -> None:
        if fold in self.folds:
            self._progress().update(self.folds[fold], total=epochs * steps)

    def batch_end(self, loss: float) -> None:
        fold = self.current
        name = self._name(fold, self.total_folds)
        self._progress().update(self.folds[fold], advance=1,
                                description=f"{name} loss {loss:.4f}{self.status[fold]}")

    def epoch_end(self, epoch: int, row: dict) -> None:
        fold = row.get("fold", self.current)
        name = self._name(fold, self.total_folds)
        scored = row.get("val_score") is not None and row["val_score"] == row["val_score"]
        if scored:  # epochs between validations are not scored: nothing to say, not "nan"
            self.status[fold] = f" | epoch {epoch} val {row['val_score']:.4f}"
        self._progress().update(self.folds[fold], completed=epoch * self.steps[fold],
                                description=f"{name} loss {row['loss']:.4f}{self.status[fold]}")
        validation = f"val score {row['val_score']:.4f} @ {row['val_threshold']:.2f} " \
            if scored else ""
        self._print(escape(
            f"  {name} epoch {epoch:3d} [{row['stage']}] loss {row['loss']:.4f} "
            f"{validation}lr {row['learning_rate']:.2e}"))

    def fold_end(self, fold: int, score: float) -> None:
        task = self.folds.pop(fold, None)
        if task is not None:
            self._progress().remove_task(task)
        self._print(f"[bold]{escape(self._name(fold, self.total_folds))}[/bold]: "
                    f"out-of-fold score {score:.4f}")

    def message(self, text: str) -> None:
        self._print(escape(for_command_line(text)))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
