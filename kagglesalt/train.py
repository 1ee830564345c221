"""Training one fold: compile + fit with callbacks that score the competition metric.

The validation callback predicts the held-out images after every epoch, searches the best
threshold, and keeps the checkpoint with the best competition score; it also runs early
stopping and the learning-rate schedule, since both follow that score rather than the loss.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from kagglesalt import inputs, losses, metric, predict
from kagglesalt.augment import Augment
from kagglesalt.errors import KaggleSaltError
from kagglesalt.plugins import ModelSpec


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides how a fold is trained (recorded in config.json)."""

    input_size: int
    input_mode: str
    logits: bool
    loss: str
    epochs: int
    batch_size: int
    learning_rate: float
    schedule: str
    patience: int = 10
    seed: int = 42
    params: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, float] = field(default_factory=dict)


class Reporter:
    """Progress callbacks; the CLI shows them with rich, a notebook may ignore them."""

    def fold_start(self, fold: int, folds: int, epochs: int, steps: int) -> None: ...
    def batch_end(self, loss: float) -> None: ...
    def epoch_end(self, epoch: int, row: dict[str, float]) -> None: ...
    def fold_end(self, fold: int, score: float) -> None: ...
    def message(self, text: str) -> None: ...


class Batches(keras.utils.PyDataset):
    """Shuffled, augmented training batches of (image, mask) model inputs."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, augment: Augment,
                 seed: int):
        super().__init__()
        self.x, self.y, self.batch_size, self.augment = x, y, batch_size, augment
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i: int):
        idx = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
        return self.augment(self.x[idx], self.y[idx], self.rng)

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.x))


class BatchProgress(keras.callbacks.Callback):
    """Reports each batch's loss. Marked async-safe: a callback with a batch hook otherwise
    makes Keras wait for every step's result, which starves a GPU."""

    async_safe = True

    def __init__(self, reporter: Reporter):
        super().__init__()
        self.reporter = reporter

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.reporter.batch_end(float((logs or {}).get("loss", float("nan"))))


class CompetitionCheckpoint(keras.callbacks.Callback):
    """Score the validation images each epoch; checkpoint, stop early and set the rate."""

    def __init__(self, images: np.ndarray, truth: np.ndarray, settings: TrainSettings,
                 path: Path, reporter: Reporter, epoch_offset: int, stage: str, best: float):
        super().__init__()
        self.images, self.truth, self.s, self.path = images, truth, settings, path
        self.reporter, self.offset, self.stage = reporter, epoch_offset, stage
        self.best, self.since_best, self.rows = best, 0, []
        self.stage_epochs = 0

    def on_train_begin(self, logs=None) -> None:
        self.stage_epochs = self.params.get("epochs", 1)
        self.base_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        if self.s.schedule == "cosine":
            floor = self.base_rate * 0.01
            rate = floor + 0.5 * (self.base_rate - floor) * \
                (1 + math.cos(math.pi * epoch / max(1, self.stage_epochs)))
            self.model.optimizer.learning_rate.assign(rate)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        levels = predict.levels(self.model, self.images, self.s.input_size, self.s.input_mode,
                                self.s.logits, tta=False, batch_size=self.s.batch_size * 2)
        search = metric.threshold_curve(self.truth, levels)
        rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {"epoch": self.offset + epoch + 1, "stage": self.stage,
               "loss": float((logs or {}).get("loss", float("nan"))),
               "val_score": search.score, "val_threshold": search.threshold,
               "learning_rate": rate}
        self.rows.append(row)
        if search.score > self.best:
            self.best, self.since_best = search.score, 0
            # Keras insists on a .keras name, so the atomic write is done by hand.
            tmp = self.path.with_name(f".{self.path.stem}.partial.keras")
            self.model.save(tmp)
            os.replace(tmp, self.path)
        else:
            self.since_best += 1
            if self.s.schedule == "plateau" and self.since_best % max(1, self.s.patience // 2) \
                    == 0:
                self.model.optimizer.learning_rate.assign(rate * 0.5)
            if self.since_best >= self.s.patience:
                self.model.stop_training = True
        self.reporter.epoch_end(self.offset + epoch + 1, row)


def stage_epochs(loss: str, epochs: int) -> list[tuple[str, int]]:
    """Split the epochs over the loss schedule: a second (Lovász) stage gets a third."""
    names = losses.SCHEDULES[loss]
    if len(names) == 1 or epochs < 2:
        return [(names[0], epochs)]
    second = max(1, epochs // 3)
    return [(names[0], max(1, epochs - second)), (names[1], second)]


def train_fold(spec: ModelSpec, settings: TrainSettings, train_images: np.ndarray,
               train_masks: np.ndarray, val_images: np.ndarray, val_masks: np.ndarray,
               fold_dir: Path, reporter: Reporter | None = None,
               fold: int = 0, folds: int = 1) -> tuple[keras.Model, pd.DataFrame]:
    """Train one fold; the best checkpoint is `fold_dir/model.keras`, history returned."""
    reporter = reporter or Reporter()
    keras.utils.set_random_seed(settings.seed + fold)
    fold_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = fold_dir / "model.keras"
    x = inputs.to_input(train_images, settings.input_size, settings.input_mode)
    y = inputs.to_input(train_masks, settings.input_size, settings.input_mode)
    y = (y > 0.5).astype(np.float32)
    batches = Batches(x, y, settings.batch_size, Augment(**settings.augment),
                      settings.seed + fold)
    try:
        model = spec.build(input_size=settings.input_size, **settings.params)
    except Exception as e:  # a parameter of the wrong type or value, usually
        raise KaggleSaltError(f"model {spec.name} could not be built with {settings.params}: "
                              f"{type(e).__name__}: {e}") from None
    reporter.fold_start(fold, folds, settings.epochs, len(batches))
    rows, best, done = [], -1.0, 0
    for number, (stage, epochs) in enumerate(stage_epochs(settings.loss, settings.epochs)):
        if checkpoint.exists():  # a later stage starts from the best weights so far
            model.load_weights(checkpoint)
        # A later stage fine-tunes: it starts at half the rate.
        rate = settings.learning_rate / 2**number
        model.compile(optimizer=keras.optimizers.Adam(rate),
                      loss=losses.get(stage, settings.logits))
        callback = CompetitionCheckpoint(val_images, val_masks, settings, checkpoint, reporter,
                                         done, stage, best)
        callbacks = [callback]
        if type(reporter).batch_end is not Reporter.batch_end:
            callbacks.append(BatchProgress(reporter))
        model.fit(batches, epochs=epochs, callbacks=callbacks, verbose=0)
        rows += callback.rows
        best, done = callback.best, done + epochs
    model = keras.models.load_model(checkpoint, compile=False)
    return model, pd.DataFrame(rows)
