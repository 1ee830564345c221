"""Time budgets: how long a cv run takes on this machine, and how many epochs fit in it.

One planner serves `cv --minutes`, the demo and the ETA every run shows. It starts from
`Rates` measured on this machine before training (`fold.measure_rates`), chooses the
epochs that fit the budget (`choose_epochs`), and then, because a measurement of a few
seconds is easily spoiled by a load spike or a slower stretch of the machine, each fold
re-plans its remaining epochs from the pace it actually keeps (`FoldClock`), so the run
ends on time whatever the first measurement said.

Keras-free: a plan is arithmetic on rates and on the schedule (`schedule.py`).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kagglesalt.model import schedule
from kagglesalt.model.settings import TrainSettings
from kagglesalt.progress import Forwarding, Reporter

MAX_EPOCHS = 400  # per fold, however fast the machine
HOURS_WORTH_SAYING = 2.0  # a run planned to take longer than this says so before training
# Seconds after the folds: OOF threshold curve and post-processing search, the files.
FINISH_SECONDS, FINISH_PER_IMAGE = 5.0, 0.002


@dataclass(frozen=True)
class Rates:
    """What this machine does with a model, measured: images per second through a
    training step (per stage loss, as the Lovász loss sorts and costs more), images per
    second predicted (one model, one view) and seconds to compile a stage's step."""

    train: dict[str, float]
    predict: float
    compile: float

    def to_config(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else
                    {name: round(r, 2) for name, r in v.items()})
                for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Workload:
    """The images of one fold: trained on, held out (scored during training and predicted
    with TTA at its end) and test images (predicted with TTA at its end)."""

    fit: int
    valid: int
    test: int

    @classmethod
    def of_folds(cls, n_train: int, n_test: int, folds: int, extra: int = 0) -> Workload:
        """A fold's work: `extra` images (pseudo-labelled) train with its own."""
        valid = math.ceil(n_train / folds)
        return cls(n_train - valid + extra, valid, n_test)


def _train_rate(rates: Rates, loss: str) -> float:
    return rates.train.get(loss) or min(rates.train.values())


def epoch_seconds(settings: TrainSettings, stage: schedule.Stage, work: Workload,
                  rates: Rates) -> float:
    """One epoch's training steps (full batches only)."""
    batch = min(settings.batch_size, work.fit)
    return (work.fit // batch) * batch / _train_rate(rates, stage.loss)


def final_seconds(settings: TrainSettings, stages: list[schedule.Stage], work: Workload,
                  rates: Rates) -> float:
    """The fold's closing predictions: every kept model, both flip views, held-out and
    test images."""
    models = len(stages[-1].cycle_ends()) if settings.snapshots else 1
    return models * 2 * (work.valid + work.test) / rates.predict


def fold_seconds(settings: TrainSettings, epochs: int, work: Workload, rates: Rates) -> float:
    """Seconds to train and predict one fold of `epochs`."""
    stages = schedule.stage_plan(settings, epochs)
    training = sum(stage.epochs * epoch_seconds(settings, stage, work, rates)
                   for stage in stages)
    scoring = schedule.validations(stages, settings.validate_every) * work.valid / rates.predict
    return len(stages) * rates.compile + training + scoring + \
        final_seconds(settings, stages, work, rates)


def finish_seconds(n_train: int) -> float:
    return FINISH_SECONDS + FINISH_PER_IMAGE * n_train


def least_epochs(settings: TrainSettings) -> int:
    """The fewest epochs that keep the recipe's shape: one per stage and snapshot."""
    return len(schedule.stage_plan(settings, 2)) + max(0, settings.snapshots - 1)


def choose_epochs(seconds: float, settings: TrainSettings, work: Workload, folds: int,
                  rates: Rates, n_train: int, most: int = MAX_EPOCHS) -> int:
    """The most epochs per fold (up to `most`) with which `folds` folds and the run's
    finish fit in `seconds`; the least that keep the recipe's shape if none fit."""
    least = least_epochs(settings)
    available = seconds - finish_seconds(n_train)

    def fits(epochs: int) -> bool:
        return folds * fold_seconds(settings, epochs, work, rates) <= available

    if not fits(least):
        return least
    low, high = least, max(least, most)  # fold_seconds grows with the epochs: bisect
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


def run_seconds(settings: TrainSettings, work: Workload, folds: int, rates: Rates,
                n_train: int) -> float:
    return folds * fold_seconds(settings, settings.epochs, work, rates) + \
        finish_seconds(n_train)


@dataclass(frozen=True)
class Budget:
    """A run's time budget, as `config.json` records it: the minutes given, the rates
    measured and the epochs chosen from them (each fold re-plans its own as it goes)."""

    minutes: float
    epochs: int
    rates: Rates
    device: str = ""

    def to_config(self) -> dict[str, Any]:
        return {"minutes": self.minutes, "epochs": self.epochs,
                "rates": self.rates.to_config(), "device": self.device}

    @classmethod
    def from_config(cls, values: dict[str, Any]) -> Budget:
        rates = values["rates"]
        return cls(values["minutes"], values["epochs"],
                   Rates(dict(rates["train"]), rates["predict"], rates["compile"]),
                   values.get("device", ""))


@dataclass(frozen=True)
class FoldBudget:
    """What a fold trained to a time budget is given: its seconds (training, scoring and
    closing predictions), the rates measured before the run, and the most epochs it may
    grow to."""

    seconds: float
    rates: Rates
    most_epochs: int = MAX_EPOCHS


@dataclass
class FoldClock:
    """Keeps a fold within its budget: after each epoch, the largest total of epochs (up to
    the budget's most) whose remaining training, scoring and closing predictions fit in the
    time left, at the pace measured so far in this fold (the first epoch of each stage,
    which compiles, is left out once later ones are known). Starts from the rates
    measured before the run."""

    given: FoldBudget
    settings: TrainSettings
    work: Workload
    started: float = field(default_factory=time.perf_counter)
    now: Callable[[], float] = time.perf_counter
    # Seconds of each epoch's training steps per stage loss, and whether it was the first
    # of its stage (and compiled).
    epochs: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    scoring: list[float] = field(default_factory=list)  # seconds of each validation

    def record(self, loss: str, seconds: float, first_of_stage: bool) -> None:
        self.epochs.setdefault(loss, []).append((seconds, first_of_stage))

    def record_scoring(self, seconds: float) -> None:
        self.scoring.append(seconds)

    def _rates(self, stages: list[schedule.Stage]) -> Rates:
        """The measured pace as rates (the median of the last five epochs that did not
        compile, else the one that did), else the planned ones."""
        train = dict(self.given.rates.train)
        for loss, samples in self.epochs.items():
            clean = [seconds for seconds, first in samples if not first] or \
                [seconds for seconds, _ in samples]
            stage = next(s for s in stages if s.loss == loss)
            images = epoch_seconds(self.settings, stage, self.work, self.given.rates) * \
                _train_rate(self.given.rates, loss)
            train[loss] = images / statistics.median(clean[-5:])
        predict = self.work.valid / statistics.median(self.scoring[-5:]) \
            if self.scoring and self.work.valid else self.given.rates.predict
        return replace(self.given.rates, train=train, predict=predict)

    def remaining_seconds(self, stages: list[schedule.Stage], number: int, done: int) -> float:
        """Seconds still needed by `stages` after epoch `done` of stage `number`."""
        rates = self._rates(stages)
        left = (stages[number].epochs - done) * \
            epoch_seconds(self.settings, stages[number], self.work, rates)
        for stage in stages[number + 1:]:
            left += rates.compile + stage.epochs * \
                epoch_seconds(self.settings, stage, self.work, rates)
        left += schedule.validations(stages, self.settings.validate_every, (number, done)) * \
            self.work.valid / rates.predict
        return left + final_seconds(self.settings, stages, self.work, rates)

    def replan(self, stages: list[schedule.Stage], number: int,
               done: int) -> list[schedule.Stage]:
        """The plan that ends the fold within its seconds, `done` epochs into stage
        `number` (the same plan when it already does and has no room for more)."""
        left = self.given.seconds - (self.now() - self.started)
        behind = sum(s.epochs for s in stages[:number]) + done

        def plan(total: int) -> list[schedule.Stage]:
            return schedule.replan(self.settings, stages, number, done, total)

        def fits(total: int) -> bool:
            return self.remaining_seconds(plan(total), number, done) <= left

        low = behind + len(stages) - number - 1
        if not fits(low):
            return plan(low)
        high = max(self.given.most_epochs, low)
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if fits(middle) else (low, middle - 1)
        return plan(low)


class RunProgress(Forwarding):
    """Passes training progress on, and moves the run's overall bar by the estimated
    seconds of each finished piece of work (compiling, batches, scoring, the closing
    predictions), so its ETA covers the whole run; a re-planned fold changes the total."""

    def __init__(self, inner: Reporter, settings: TrainSettings, work: Workload,
                 rates: Rates, folds: int, n_train: int, description: str = "run"):
        super().__init__(inner)
        self.s, self.work, self.rates = settings, work, rates
        self.planned = {k: settings.epochs for k in range(folds)}
        self.n_train, self.description = n_train, description
        self.batch_seconds = min(settings.batch_size, work.fit) / min(rates.train.values())
        self.epoch_units: dict[int, float] = {}
        self.current, self.advanced = 0, 0.0

    def _advance(self, units: float) -> None:
        self.advanced += units
        self.inner.advance(units)

    def finish(self) -> None:
        """The run is done: the overall bar is filled, whatever the estimates said."""
        self.inner.overall(self.description, self.advanced)

    def total(self) -> float:
        return sum(fold_seconds(self.s, epochs, self.work, self.rates)
                   for epochs in self.planned.values()) + finish_seconds(self.n_train)

    def start(self, done_folds: Sequence[int] = ()) -> None:
        for k in done_folds:
            self.planned.pop(k, None)
        self.inner.overall(self.description, self.total())

    def fold_start(self, fold, folds, epochs, steps):
        self.current = fold
        self._advance(self.rates.compile)
        self.inner.fold_start(fold, folds, epochs, steps)

    def fold_epochs(self, fold, epochs, steps):
        self.planned[fold] = epochs
        self.inner.overall(self.description, self.total())
        self.inner.fold_epochs(fold, epochs, steps)

    def batch_end(self, loss):
        self.epoch_units[self.current] = self.epoch_units.get(self.current, 0.0) + \
            self.batch_seconds
        self._advance(self.batch_seconds)
        self.inner.batch_end(loss)

    def epoch_end(self, epoch, row):
        fold = row.get("fold", self.current)
        steps = self.work.fit // min(self.s.batch_size, self.work.fit)
        # On Ray no batch events arrive: the epoch's batches are counted here instead.
        self._advance(max(0.0, steps * self.batch_seconds -
                               self.epoch_units.pop(fold, 0.0)))
        if row.get("val_score") == row.get("val_score"):  # scored this epoch (not NaN)
            self._advance(self.work.valid / self.rates.predict)
        self.inner.epoch_end(epoch, row)

    def fold_end(self, fold, score):
        self._advance(final_seconds(self.s, schedule.stage_plan(
            self.s, self.planned.get(fold, self.s.epochs)), self.work, self.rates))
        self.inner.fold_end(fold, score)

    def advance(self, units):
        self._advance(units)
