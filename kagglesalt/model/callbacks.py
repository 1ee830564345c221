"""The callbacks of a fold's training, each with one job, in the order `fold.train_fold`
gives them: `ValidationScore` writes the competition score of the held-out images into each
epoch's logs and the callbacks after it read it there."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from kagglesalt.competition import metric
from kagglesalt.model import budget, inference
from kagglesalt.model.results import FoldState, UnusableState
from kagglesalt.model.schedule import Stage
from kagglesalt.model.settings import TrainSettings
from kagglesalt.progress import Reporter


class BatchProgress(keras.callbacks.Callback):
    """Reports each batch's loss. Marked async-safe: a callback with a batch hook otherwise
    makes Keras wait for every step's result, which starves a GPU."""

    async_safe = True

    def __init__(self, reporter: Reporter):
        super().__init__()
        self.reporter = reporter

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.reporter.batch_end(float((logs or {}).get("loss", float("nan"))))


class Plan:
    """A fold's stages, which a fold trained to a time budget re-plans as it goes; the
    callbacks read the current stage from here, never a copy."""

    def __init__(self, stages: list[Stage]):
        self.stages = stages

    @property
    def epochs(self) -> int:
        return sum(stage.epochs for stage in self.stages)

    # Each piece of a fold's training state keeps its own: `state()` gives what a
    # checkpoint stores of it, `restore()` takes it back (as Lightning's callbacks do).

    def state(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(s) for s in self.stages]

    def restore(self, stages: list[dict[str, Any]]) -> None:
        """UnusableState when the stored stages do not read."""
        try:
            self.stages = [Stage(**{**s, "ends": tuple(s.get("ends") or ())}) for s in stages]
        except (TypeError, ValueError) as e:
            raise UnusableState(f"its stages do not read ({e})") from None


class ValidationScore(keras.callbacks.Callback):
    """The competition score of the held-out images (best threshold, no TTA) after every
    `validate_every`-th epoch of a stage and at the end of each of its cycles, put into the
    epoch's logs as `val_score` and `val_threshold` for the callbacks that come after it."""

    def __init__(self, predictor: keras.Model, images: np.ndarray, truth: np.ndarray,
                 settings: TrainSettings, plan: Plan, clock: budget.FoldClock | None = None):
        super().__init__()
        self.predictor, self.images, self.truth, self.s = predictor, images, truth, settings
        self.plan, self.clock, self.number = plan, clock, 0

    def start_stage(self, number: int) -> ValidationScore:
        self.number = number
        return self

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if not self.plan.stages[self.number].validates(epoch + 1, self.s.validate_every):
            return
        started = time.perf_counter()
        levels = inference.levels([self.predictor], self.images, self.s.input_size,
                                self.s.input_mode, self.s.logits, tta=False,
                                batch_size=inference.batch_size(self.s.batch_size))
        search = metric.threshold_curve(self.truth, levels)
        logs["val_score"], logs["val_threshold"] = search.score, search.threshold
        if self.clock is not None:
            self.clock.record_scoring(time.perf_counter() - started)


class KeepBest(keras.callbacks.Callback):
    """Keeps, in memory, the weights of the epoch with the best `val_score`; one instance
    serves every stage, so the best is over the whole fold."""

    def __init__(self):
        super().__init__()
        self.best = -math.inf
        self.weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if logs.get("val_score", -math.inf) > self.best:
            self.best, self.weights = logs["val_score"], self.model.get_weights()

    def state(self) -> tuple[float, list[np.ndarray] | None]:
        return float(self.best), self.weights

    def restore(self, best: float, weights: list[np.ndarray] | None) -> None:
        self.best, self.weights = best, weights


class Snapshots(keras.callbacks.Callback):
    """Keeps, in memory, the weights at the last epoch of each cosine cycle of the last
    stage."""

    def __init__(self, plan: Plan):
        super().__init__()
        self.plan = plan
        self.weights: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch + 1 in self.plan.stages[-1].cycle_ends():
            self.weights.append(self.model.get_weights())

    def state(self) -> list[list[np.ndarray]]:
        return list(self.weights)

    def restore(self, weights: list[list[np.ndarray]]) -> None:
        self.weights = list(weights)


class Pacer(keras.callbacks.Callback):
    """Keeps a fold trained to a time budget on time: times each epoch and lets the
    `budget.FoldClock` re-plan the fold's remaining epochs (never at the end of a cycle
    before a stage's last, where a snapshot is due; at the stage's last epoch a plan with
    time to spare lengthens its last cycle). Comes first among the callbacks, so the others
    see the new plan at the same epoch."""

    def __init__(self, clock: budget.FoldClock, plan: Plan, reporter: Reporter, fold: int,
                 steps: int):
        super().__init__()
        self.clock, self.plan, self.reporter = clock, plan, reporter
        self.fold, self.steps, self.number = fold, steps, 0

    def start_stage(self, number: int) -> Pacer:
        self.number = number
        return self

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.began = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        stage = self.plan.stages[self.number]
        self.clock.record(stage.loss, time.perf_counter() - self.began, epoch == 0)
        if epoch + 1 in stage.cycle_ends()[:-1]:
            return
        stages = self.clock.replan(self.plan.stages, self.number, epoch + 1)
        if stages != self.plan.stages:
            self.plan.stages = stages
            self.reporter.fold_epochs(self.fold, self.plan.epochs, self.steps)


class Checkpointer(keras.callbacks.Callback):
    """Hands the fold's state to `save` after an epoch, at most every `every` seconds and
    at the end of each stage, so an interrupted fold loses little. Comes last among the
    callbacks, after the history row and the kept weights of the epoch are in."""

    def __init__(self, save: Callable[[FoldState], None], every: float, plan: Plan,
                 log: EpochLog, best: KeepBest, snapshots: Snapshots, started: float):
        super().__init__()
        self.save, self.every, self.plan, self.log = save, every, plan, log
        self.best, self.snapshots, self.started = best, snapshots, started
        self.number, self.done, self.last = 0, 0, time.perf_counter()

    def start_stage(self, number: int, done: int) -> Checkpointer:
        self.number, self.done = number, done
        return self

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        stage_over = epoch + 1 >= self.plan.stages[self.number].epochs
        if time.perf_counter() - self.last < self.every and not stage_over:
            return
        best_score, best_weights = self.best.state()
        self.save(FoldState(
            self.number, epoch + 1, self.done, self.plan.state(), self.log.state(),
            best_score, time.perf_counter() - self.started, self.model.get_weights(),
            [keras.ops.convert_to_numpy(v) for v in self.model.optimizer.variables],
            best_weights, self.snapshots.state()))
        self.last = time.perf_counter()


class StageEnd(keras.callbacks.Callback):
    """Ends a stage whose length a `Pacer` may change at the epoch its plan now says."""

    def __init__(self, plan: Plan):
        super().__init__()
        self.plan, self.number = plan, 0

    def start_stage(self, number: int) -> StageEnd:
        self.number = number
        return self

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch + 1 >= self.plan.stages[self.number].epochs:
            self.model.stop_training = True


class EpochLog(keras.callbacks.Callback):
    """One history row per epoch (numbered over the whole fold), passed to the reporter."""

    def __init__(self, reporter: Reporter):
        super().__init__()
        self.reporter, self.stage, self.offset = reporter, "", 0
        self.rows: list[dict[str, Any]] = []

    def start_stage(self, stage: str, offset: int) -> EpochLog:
        self.stage, self.offset = stage, offset
        return self

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        row = {"epoch": self.offset + epoch + 1, "stage": self.stage,
               "loss": float(logs.get("loss", float("nan"))),
               "val_score": logs.get("val_score", float("nan")),
               "val_threshold": logs.get("val_threshold", float("nan")),
               "learning_rate": self.rate}
        self.rows.append(row)
        self.reporter.epoch_end(row["epoch"], row)

    def state(self) -> list[dict[str, Any]]:
        return list(self.rows)

    def restore(self, rows: list[dict[str, Any]]) -> None:
        self.rows = list(rows)


def rate_schedule(plan: Plan, number: int,
                  settings: TrainSettings) -> keras.callbacks.Callback:
    if settings.schedule == "cosine":
        return keras.callbacks.LearningRateScheduler(
            lambda epoch, _: plan.stages[number].cosine_rate(epoch))
    return keras.callbacks.ReduceLROnPlateau(monitor="val_score", mode="max", factor=0.5,
                                             patience=max(1, settings.patience // 2),
                                             min_delta=0.0)

