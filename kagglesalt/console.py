"""The rich console and progress bars the CLI shares."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

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
def counting(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar driven by callbacks `update(done, total)`."""
    with progress_bar() as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


class RichReporter:
    """Shows training progress: fold k of K, epoch, loss, validation score, ETA."""

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.task = None
        self.status = ""

    def fold_start(self, fold: int, folds: int, epochs: int, steps: int) -> None:
        self.close()
        self.bar = progress_bar()
        self.bar.start()
        self.fold = f"fold {fold + 1}/{folds}"
        self.task = self.bar.add_task(self.fold, total=epochs * steps)

    def batch_end(self, loss: float) -> None:
        self.bar.update(self.task, advance=1,
                        description=f"{self.fold} loss {loss:.4f}{self.status}")

    def epoch_end(self, epoch: int, row: dict) -> None:
        self.status = f" | epoch {epoch} val {row['val_score']:.4f}"
        self.bar.console.print(
            f"  {self.fold} epoch {epoch:3d} [{row['stage']}] loss {row['loss']:.4f} "
            f"val score {row['val_score']:.4f} @ {row['val_threshold']:.2f} "
            f"lr {row['learning_rate']:.2e}")

    def fold_end(self, fold: int, score: float) -> None:
        self.close()
        err_console.print(f"[bold]{self.fold}[/bold]: out-of-fold score {score:.4f}")

    def message(self, text: str) -> None:
        err_console.print(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
