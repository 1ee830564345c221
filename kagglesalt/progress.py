"""How training reports its progress: a small protocol that the CLI, the demo and a
notebook implement without importing Keras (the trainer calls it; `cli.console.RichReporter`
draws it). `Reporter` is the protocol: a class that subclasses it gets a no-op for every
method it leaves out; `Forwarding` passes everything on to an inner reporter, so a
reporter that adds something to another's (the run's overall bar, the demo's parts)
overrides only what it adds."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Progress callbacks; every method may be left as it is (a subclass inherits a no-op:
    the bodies say `return None` so that type checkers do not call them abstract)."""

    # Whether `batch_end` is wanted: sending each batch's loss costs a little per step.
    wants_batches: bool = False

    def fold_start(self, fold: int, folds: int, epochs: int, steps: int) -> None:
        return None

    # A fold trained to a time budget re-planned its epochs.
    def fold_epochs(self, fold: int, epochs: int, steps: int) -> None:
        return None

    def batch_end(self, loss: float) -> None:
        return None

    def epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        return None

    def fold_end(self, fold: int, score: float) -> None:
        return None

    def message(self, text: str) -> None:
        return None

    # The overall task around the folds, in units of estimated seconds; called again when
    # the estimate changes.
    def overall(self, description: str, total: float) -> None:
        return None

    def advance(self, units: float) -> None:
        return None


class Silent(Reporter):
    """Reports nothing: what the library uses when it is given no reporter."""


class Forwarding(Reporter):
    """Passes every call on to `inner`; subclasses override what they add to it."""

    def __init__(self, inner: Reporter):
        self.inner = inner

    @property
    def wants_batches(self) -> bool:  # type: ignore[override]
        return self.inner.wants_batches

    def fold_start(self, fold: int, folds: int, epochs: int, steps: int) -> None:
        self.inner.fold_start(fold, folds, epochs, steps)

    def fold_epochs(self, fold: int, epochs: int, steps: int) -> None:
        self.inner.fold_epochs(fold, epochs, steps)

    def batch_end(self, loss: float) -> None:
        self.inner.batch_end(loss)

    def epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        self.inner.epoch_end(epoch, row)

    def fold_end(self, fold: int, score: float) -> None:
        self.inner.fold_end(fold, score)

    def message(self, text: str) -> None:
        self.inner.message(text)

    def overall(self, description: str, total: float) -> None:
        self.inner.overall(description, total)

    def advance(self, units: float) -> None:
        self.inner.advance(units)
