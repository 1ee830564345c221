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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kagglesalt import cv, data, ensemble, plugins, timestamps
from kagglesalt.competition import submission
from kagglesalt.data import synth
from kagglesalt.model import budget
from kagglesalt.model.settings import TrainSettings
from kagglesalt.progress import Forwarding, Reporter, Silent
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
class Plan:
    train: int  # synthetic training images
    test: int  # synthetic test images
    epochs: int
    parts: dict[str, float] = field(default_factory=dict)  # estimated seconds of each part

    @property
    def seconds(self) -> float:
        return sum(self.parts.values())


def _settings(epochs: int) -> TrainSettings:
    return plugins.get_model(MODEL).training_settings({**SETTINGS, "epochs": epochs})


def estimate(n_train: int, n_test: int, epochs: int, rates: budget.Rates,
             synthesis: bool = True) -> dict[str, float]:
    """Seconds of each part of the demo for this many images and epochs."""
    work = budget.Workload.of_folds(n_train, n_test, FOLDS)
    return {"data": SYNTH_SECONDS * (n_train + n_test) if synthesis else 0.0,
            "training": budget.run_seconds(_settings(epochs), work, FOLDS, rates, n_train),
            "ensemble": ENSEMBLE_SECONDS}


def updates(n_train: int, epochs: int) -> int:
    """Weight updates per fold (batches are full, the remainder is left out)."""
    return epochs * (n_train - n_train // FOLDS) // SETTINGS["batch_size"]


def choose(budget_seconds: float, rates: budget.Rates,
           existing: tuple[int, int] | None = None) -> Plan:
    """The largest data set that gets GOOD_UPDATES per fold within `budget_seconds`, with as
    many epochs as fit (up to MAX_EPOCHS); else the smallest, with as many as fit (at least
    MIN_EPOCHS). A data folder that holds data already is used as it is: `existing` gives
    its (train, test) counts."""
    sizes = [existing] if existing else [(n, TEST_IMAGES) for n in TRAIN_SIZES]
    for rank, (n_train, n_test) in enumerate(sizes):
        floor = MIN_EPOCHS if rank == len(sizes) - 1 else \
            max(MIN_EPOCHS, -(-GOOD_UPDATES // max(1, updates(n_train, 1))))
        for epochs in range(MAX_EPOCHS, floor - 1, -1):
            parts = estimate(n_train, n_test, epochs, rates, existing is None)
            if sum(parts.values()) <= budget_seconds:
                return Plan(n_train, n_test, epochs, parts)
    n_train, n_test = sizes[-1]
    return Plan(n_train, n_test, MIN_EPOCHS,
                estimate(n_train, n_test, MIN_EPOCHS, rates, existing is None))


class _DemoBar(Forwarding):
    """Passes the run's progress on, with the demo's own parts (the data before, the
    ensemble after) added to the overall bar the run draws."""

    def __init__(self, inner: Reporter, before: float, after: float):
        super().__init__(inner)
        self.before, self.after, self.started = before, after, False

    def overall(self, description: str, total: float) -> None:
        self.inner.overall("demo", total + self.before + self.after)
        if not self.started:
            self.started = True
            self.inner.advance(self.before)


@dataclass(frozen=True)
class DemoResult:
    run_name: str
    submission: Path
    test_score: float | None  # on the hidden masks of the synthetic test images
    plan: Plan
    rates: budget.Rates
    seconds: float
    ensemble: ensemble.EnsembleResult  # the submission's members, threshold, post-processing


def run_demo(ws: Workspace, minutes: float, reporter: Reporter | None = None) -> DemoResult:
    """Measure, plan, make the data, cross-validate and ensemble into a submission within
    `minutes`: the data's size and the first plan of epochs come from the speed measured
    first, and the folds re-plan their epochs as they go."""
    from kagglesalt.model.fold import measure_rates

    started = time.perf_counter()
    reporter = reporter or Silent()
    reporter.message(f"Timing {MODEL} on this machine to fit the demo into {minutes:g} "
                     "minutes")
    rates = measure_rates(plugins.get_model(MODEL), _settings(MIN_EPOCHS))
    existing = None
    if data.has_train(ws.data_dir):
        existing = (len(data.load_train(ws.data_dir)), len(data.load_test(ws.data_dir)))
    plan = choose(minutes * 60 - (time.perf_counter() - started), rates, existing)
    if plan.seconds > minutes * 60:
        reporter.message(f"This data set needs about {plan.seconds / 60:.0f} minutes even at "
                         f"{plan.epochs} epochs")
    if existing:
        reporter.message(f"Using the {plan.train} training and {plan.test} test images in "
                         f"{ws.data_dir}; {FOLDS} folds of about {plan.epochs} epochs")
    else:
        reporter.message(
            f"No competition data in {ws.data_dir}: generating the embedded default, "
            f"{plan.train} synthetic training and {plan.test} test images; then {FOLDS} "
            f"folds of about {plan.epochs} epochs of {MODEL} at "
            f"{min(rates.train.values()):.0f} images/s")
        synth.generate(ws.data_dir, plan.train, plan.test)
    left = minutes * 60 - (time.perf_counter() - started) - plan.parts["ensemble"]
    name = f"demo-{MODEL}-k{FOLDS}-{timestamps.for_name()}"
    if plan.seconds > minutes * 60:  # said above: the data is larger than the demo's time
        options = cv.CVOptions(MODEL, FOLDS, name,
                               settings={**SETTINGS, "epochs": plan.epochs})
    else:
        options = cv.CVOptions(MODEL, FOLDS, name, settings=dict(SETTINGS),
                               minutes=max(left, 1.0) / 60, most_epochs=MAX_EPOCHS)
    bar = _DemoBar(reporter, plan.parts["data"], plan.parts["ensemble"])
    run = cv.run_cv(ws, options, bar, rates)
    made = ensemble.run_ensemble(ws, (run.name,), "auto", name=run.name)  # one timestamp
    reporter.advance(plan.parts["ensemble"])
    truth = Path(ws.data_dir) / synth.TEST_TRUTH
    score = submission.score_files(made.path, truth)[0] if truth.exists() else None
    epochs = max(run.finished_fold(k).epochs_run for k in range(FOLDS))
    return DemoResult(run.name, made.path, score, replace(plan, epochs=epochs), rates,
                      time.perf_counter() - started, made)
