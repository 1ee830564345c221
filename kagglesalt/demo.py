"""`kagglesalt demo`: the whole workflow on the embedded default, fitted to a time budget.

The demo first times a few training and prediction steps of its model on this machine, then
chooses how many synthetic images to make and how many epochs to train, so that the data,
a 2-fold CV with test predictions and the ensemble end within the budget: a slow laptop gets
a smaller, shorter run that still learns, a fast one a longer run that learns more.

What makes the model learn is the number of weight updates: on the synthetic set the demo's
U-Net sits at "everything empty" (0.40) for about 100 updates, then climbs past 0.75 by
about 300 (measured: 700 images, batch 16, 64x64).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kagglesalt import cv, data, plugins, synth
from kagglesalt.train import Reporter
from kagglesalt.workspace import Workspace

MODEL = "unet"
FOLDS = 2
# The classic U-Net at 64x64 (a third of the time of its notebook 128x128 here, same score
# on this data) with light dropout, BCE + Dice and a brisk rate.
SETTINGS: dict[str, Any] = {"input_size": 64, "loss": "bce_dice", "batch_size": 16,
                            "learning_rate": 3e-3, "seed": 42, "params": {"dropout": 0.1}}
TRAIN_SIZES = (1000, 800, 600)  # the largest that gets GOOD_UPDATES per fold is chosen
TEST_IMAGES = 400
GOOD_UPDATES = 320  # per fold
MIN_EPOCHS, MAX_EPOCHS = 3, 40
SYNTH_SECONDS = 0.004  # per synthetic image, on a slow machine
ENSEMBLE_SECONDS = 10.0  # weights, threshold and post-processing search, the CSV


@dataclass(frozen=True)
class Rates:
    """What this machine does with the demo's model, measured."""

    train: float  # training images per second
    predict: float  # predicted images per second
    compile: float  # seconds before a fold's first steps run (tracing, compiling)


@dataclass(frozen=True)
class Plan:
    train: int  # synthetic training images
    test: int  # synthetic test images
    epochs: int
    parts: dict[str, float] = field(default_factory=dict)  # estimated seconds of each part

    @property
    def seconds(self) -> float:
        return sum(self.parts.values())


def estimate(n_train: int, n_test: int, epochs: int, rates: Rates,
             synthesis: bool = True) -> dict[str, float]:
    """Seconds of each part of the demo for this many images and epochs."""
    valid = n_train / FOLDS
    per_epoch = (n_train - valid) / rates.train + valid / rates.predict
    per_fold = rates.compile + epochs * per_epoch + 2 * (valid + n_test) / rates.predict
    return {"data": SYNTH_SECONDS * (n_train + n_test) if synthesis else 0.0,
            "training": FOLDS * per_fold, "ensemble": ENSEMBLE_SECONDS}


def updates(n_train: int, epochs: int) -> int:
    """Weight updates per fold (batches are full, the remainder is left out)."""
    return epochs * (n_train - n_train // FOLDS) // SETTINGS["batch_size"]


def choose(budget: float, rates: Rates, existing: tuple[int, int] | None = None) -> Plan:
    """The largest data set that gets GOOD_UPDATES per fold within `budget` seconds, with as
    many epochs as fit (up to MAX_EPOCHS); else the smallest, with as many as fit (at least
    MIN_EPOCHS). A data folder that holds data already is used as it is: `existing` gives
    its (train, test) counts."""
    sizes = [existing] if existing else [(n, TEST_IMAGES) for n in TRAIN_SIZES]
    for rank, (n_train, n_test) in enumerate(sizes):
        floor = MIN_EPOCHS if rank == len(sizes) - 1 else \
            max(MIN_EPOCHS, -(-GOOD_UPDATES // max(1, updates(n_train, 1))))
        for epochs in range(MAX_EPOCHS, floor - 1, -1):
            parts = estimate(n_train, n_test, epochs, rates, existing is None)
            if sum(parts.values()) <= budget:
                return Plan(n_train, n_test, epochs, parts)
    n_train, n_test = sizes[-1]
    return Plan(n_train, n_test, MIN_EPOCHS,
                estimate(n_train, n_test, MIN_EPOCHS, rates, existing is None))


def measure(steps: int = 8) -> Rates:
    """Time the demo model's training and prediction steps on random images."""
    import keras

    from kagglesalt.train import build_models, stage_plan, training_loss

    spec = plugins.get_model(MODEL)
    chosen = spec.training_settings(SETTINGS)
    rng = np.random.default_rng(0)
    size, batch = chosen.input_size, chosen.batch_size
    x = rng.random((batch * steps, size, size, 1), dtype=np.float32)
    y = (rng.random(x.shape) > 0.5).astype(np.float32)
    started = time.perf_counter()
    model, predictor = build_models(spec, chosen)
    model.compile(optimizer=keras.optimizers.Adam(chosen.learning_rate),
                  **training_loss(stage_plan(chosen)[0], chosen, 1))
    model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)
    predictor.predict(x[:batch], batch_size=64, verbose=0)
    compiled = time.perf_counter() - started
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    train_rate = len(x) / (time.perf_counter() - started)
    started = time.perf_counter()
    predictor.predict(x, batch_size=64, verbose=0)
    predict_rate = len(x) / (time.perf_counter() - started)
    return Rates(train_rate, predict_rate, compiled)


class Budgeted(Reporter):
    """Passes training progress on, and moves the demo's overall bar by the estimated
    seconds of each finished piece of work, so its ETA covers the whole demo."""

    def __init__(self, inner: Reporter, rates: Rates, plan: Plan):
        self.inner, self.rates, self.plan = inner, rates, plan
        self.batch = SETTINGS["batch_size"]
        self.valid = plan.train / FOLDS

    def fold_start(self, fold, folds, epochs, steps):
        self.inner.advance(self.rates.compile)
        self.inner.fold_start(fold, folds, epochs, steps)

    def batch_end(self, loss):
        self.inner.advance(self.batch / self.rates.train)
        self.inner.batch_end(loss)

    def epoch_end(self, epoch, row):
        self.inner.advance(self.valid / self.rates.predict)
        self.inner.epoch_end(epoch, row)

    def fold_end(self, fold, score):
        self.inner.advance(2 * (self.valid + self.plan.test) / self.rates.predict)
        self.inner.fold_end(fold, score)

    def message(self, text):
        self.inner.message(text)


@dataclass(frozen=True)
class DemoResult:
    run_name: str
    submission: Path
    test_score: float | None  # on the hidden masks of the synthetic test images
    plan: Plan
    rates: Rates
    seconds: float


def run_demo(ws: Workspace, minutes: float, reporter: Reporter,
             make_submission: Callable[[str], Path]) -> DemoResult:
    """Measure, plan, make the data, cross-validate and ensemble (`make_submission(run)`
    writes the submission) within `minutes`, as well as the estimates allow."""
    from kagglesalt import submission

    started = time.perf_counter()
    reporter.message(f"Timing {MODEL} on this machine to fit the demo into {minutes:g} "
                     "minutes")
    rates = measure()
    existing = None
    if data.has_train(ws.data_dir):
        existing = (len(data.load_train(ws.data_dir)), len(data.load_test(ws.data_dir)))
    plan = choose(minutes * 60 - (time.perf_counter() - started), rates, existing)
    reporter.overall("demo", plan.seconds)
    if plan.seconds > minutes * 60:
        reporter.message(f"This data set needs about {plan.seconds / 60:.0f} minutes even at "
                         f"{plan.epochs} epochs")
    if existing:
        reporter.message(f"Using the {plan.train} training and {plan.test} test images in "
                         f"{ws.data_dir}; {FOLDS} folds x {plan.epochs} epochs")
    else:
        reporter.message(
            f"No competition data in {ws.data_dir}: generating the embedded default, "
            f"{plan.train} synthetic training and {plan.test} test images; then {FOLDS} "
            f"folds x {plan.epochs} epochs of {MODEL} at {rates.train:.0f} images/s")
        synth.generate(ws.data_dir, plan.train, plan.test)
        reporter.advance(plan.parts["data"])
    options = cv.CVOptions(MODEL, FOLDS, f"demo-{MODEL}-k{FOLDS}-e{plan.epochs}",
                           settings={**SETTINGS, "epochs": plan.epochs})
    cv.run_cv(ws, options, Budgeted(reporter, rates, plan))
    path = make_submission(options.name)
    reporter.advance(plan.parts["ensemble"])
    truth = Path(ws.data_dir) / synth.TEST_TRUTH
    score = submission.score_files(path, truth)[0] if truth.exists() else None
    return DemoResult(options.name, path, score, plan, rates, time.perf_counter() - started)
