"""Training one fold: a function from settings and arrays to the fold's results.

`train_fold` compiles and fits the model stage by stage (BCE + Dice, then Lovász) on
`batches.Batches`, with the callbacks of `callbacks`, each doing one job the way Keras's own
compose: `ValidationScore` puts the competition score of the held-out images into each
epoch's logs, and the callbacks after it read it there (`KeepBest`, `Snapshots`, Keras's
`EarlyStopping`, `ReduceLROnPlateau` and `LearningRateScheduler`, `EpochLog`). Weights are
kept in memory; nothing is written to disk here, so the local loop and a remote worker call
the same function and only the driver writes the run folder (from `results.FoldResult`).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from kagglesalt.competition import metric
from kagglesalt.errors import KaggleSaltError
from kagglesalt.model import budget, inference, inputs, losses
from kagglesalt.model.backend import dtype_policy, enable_compilation_cache
from kagglesalt.model.batches import Batches
from kagglesalt.model.callbacks import (
    BatchProgress,
    Checkpointer,
    EpochLog,
    KeepBest,
    Pacer,
    Plan,
    Snapshots,
    StageEnd,
    ValidationScore,
    rate_schedule,
)
from kagglesalt.model.results import FoldJob, FoldResult, FoldState, UnusableState
from kagglesalt.model.schedule import Stage, stage_plan
from kagglesalt.model.settings import TrainSettings
from kagglesalt.model.spec import ModelSpec
from kagglesalt.progress import Reporter, Silent


def build_models(spec: ModelSpec, settings: TrainSettings) -> tuple[keras.Model, keras.Model]:
    """(the model to train, the one-output model that predicts). A model with a second,
    (N, 1) output trains it as an image-level 'has salt' logit (deep supervision); its
    first output must already use it, since only that one predicts."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype_policy(settings.precision))
    try:
        model = spec.build(input_size=settings.input_size, **settings.params)
    except Exception as e:  # a parameter of the wrong type or value, usually
        raise KaggleSaltError(f"model {spec.name} could not be built with {settings.params}: "
                              f"{type(e).__name__}: {e}") from None
    finally:
        keras.config.set_dtype_policy(previous)
    size = settings.input_size
    shapes = [tuple(output.shape[1:]) for output in model.outputs]
    if shapes[0] != (size, size, 1) or len(shapes) > 2 or shapes[1:] not in ([], [(1,)]):
        raise KaggleSaltError(f"model {spec.name} gives outputs of shapes {shapes}: it must "
                              f"give ({size}, {size}, 1), and optionally (1,) after it")
    # A model of its own (sharing the layers) that is never compiled, so it saves and
    # clones without the training losses.
    predictor = keras.Model(model.inputs, model.outputs[0], name=model.name)
    return model, predictor


def training_loss(stage: Stage, settings: TrainSettings, outputs: int) -> dict[str, Any]:
    """`compile` arguments of a stage's loss: in pad mode on the central 101x101 only;
    with a second output, plus its weighted 'has salt' BCE."""
    window = inputs.loss_window(settings.input_size, settings.input_mode)
    pixels = losses.get(stage.loss, settings.logits, settings.lovasz, window)
    if outputs == 1:
        return {"loss": pixels}
    return {"loss": [pixels, losses.bce(from_logits=True)],
            "loss_weights": [1.0, settings.has_salt_weight]}


def model_bytes(model: keras.Model) -> bytes:
    """The model as the bytes of a .keras file (Keras only saves to a named file)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def _with_weights(predictor: keras.Model, weights: list[np.ndarray]) -> keras.Model:
    clone = keras.models.clone_model(predictor)
    clone.set_weights(weights)
    return clone


def train_fold(spec: ModelSpec, settings: TrainSettings, job: FoldJob,
               reporter: Reporter | None = None,
               within: budget.FoldBudget | None = None, resume: FoldState | None = None,
               save: Callable[[FoldState], None] | None = None,
               save_every: float = 30.0) -> FoldResult:
    """Train the fold `job` describes; predict its held-out and test images with the kept
    models (the best epoch's, or the snapshots).

    `within` a time budget, the fold starts from the settings' epochs and re-plans them
    after each epoch to end within the budget's seconds. With `save`, the fold's state is
    handed over after an epoch (every `save_every` seconds at most), and a fold given that
    state back as `resume` goes on from it instead of starting over."""
    started = time.perf_counter() - (resume.seconds if resume else 0.0)
    reporter = reporter or Silent()
    enable_compilation_cache()
    keras.utils.set_random_seed(settings.seed + job.fold)
    model, predictor = build_models(spec, settings)
    outputs = len(model.outputs)
    batches = Batches(job.train_images, job.train_masks, settings, settings.seed + job.fold,
                      has_salt_target=outputs == 2)
    plan = Plan(stage_plan(settings))
    clock = None
    if within is not None:
        work = budget.Workload(len(job.train_images), len(job.val_images),
                               0 if job.test_images is None else len(job.test_images))
        clock = budget.FoldClock(within, settings, work, started)
    scorer = ValidationScore(predictor, job.val_images, job.val_masks, settings, plan, clock)
    best, log, snapshots, end = KeepBest(), EpochLog(reporter), Snapshots(plan), StageEnd(plan)
    pacer = Pacer(clock, plan, reporter, job.fold, len(batches)) if clock else None
    keeper = Checkpointer(save, save_every, plan, log, best, snapshots, started) \
        if save else None
    first, done, initial = 0, 0, 0
    if resume is not None:  # UnusableState, before any training, if it does not fit
        first, done, initial = _restore(resume, plan, log, best, snapshots, model, batches)
        reporter.message(f"fold {job.fold + 1}/{job.folds}: going on after epoch "
                         f"{done + initial}")
    reporter.fold_start(job.fold, job.folds, plan.epochs if resume else settings.epochs,
                        len(batches))
    for number in range(first, len(plan.stages)):
        stage = plan.stages[number]
        resumed = resume is not None and number == first and initial > 0
        if number and not settings.snapshots and not resumed:
            model.set_weights(best.weights)  # a later stage starts from the best so far
        model.compile(optimizer=keras.optimizers.Adam(stage.learning_rate),
                      **training_loss(stage, settings, outputs))
        if resume is not None and resumed:  # the optimizer's moments and step count
            model.optimizer.build(model.trainable_variables)
            _restore_optimizer(model.optimizer, resume.optimizer)
        callbacks = [pacer.start_stage(number)] if pacer else []
        callbacks += [scorer.start_stage(number), best, rate_schedule(plan, number, settings),
                      log.start_stage(stage.loss, done)]
        if settings.snapshots and number == len(plan.stages) - 1:
            callbacks.append(snapshots)
        stopper = None
        if not settings.snapshots:
            stopper = keras.callbacks.EarlyStopping(
                monitor="val_score", mode="max", patience=settings.patience, min_delta=0.0)
            callbacks.append(stopper)
        if reporter.wants_batches:
            callbacks.append(BatchProgress(reporter))
        # Under a budget the stage may grow: fit runs until StageEnd says the plan is done.
        callbacks.append(end.start_stage(number))
        if keeper:
            callbacks.append(keeper.start_stage(number, done))
        model.fit(batches, epochs=within.most_epochs if within else stage.epochs,
                  initial_epoch=initial if number == first else 0,
                  callbacks=callbacks, verbose=0)
        if stopper is not None and stopper.stopped_epoch > 0:  # said, not silently short
            reporter.message(f"fold {job.fold + 1}/{job.folds}: {stage.loss} stage stopped "
                             f"early at epoch {done + stopper.stopped_epoch + 1}: no gain in "
                             f"{settings.patience} epochs")
        done += plan.stages[number].epochs
    # Without snapshots every epoch is scored, so a best exists; the last weights otherwise.
    kept = snapshots.weights if settings.snapshots else [best.weights or model.get_weights()]
    models = [_with_weights(predictor, weights) for weights in kept]
    oof, test = _predict(models, settings, job.val_images, job.test_images)
    inference.release([predictor, *models])
    search = metric.threshold_curve(job.val_masks, oof)
    result = FoldResult(job.fold, pd.DataFrame(log.rows), [model_bytes(m) for m in models], oof,
                        test, search.score, search.threshold, time.perf_counter() - started,
                        len(job.train_images))
    reporter.fold_end(job.fold, search.score)
    return result


def _restore(state: FoldState, plan: Plan, log: EpochLog, best: KeepBest,
             snapshots: Snapshots, model: keras.Model, batches: Batches
             ) -> tuple[int, int, int]:
    """Put a saved fold state back; returns (first stage to train, epochs before it, epochs
    of it already done). UnusableState when it does not fit this model and plan."""
    state.check_fits([tuple(w.shape) for w in model.weights])
    plan.restore(state.stages)
    if not 0 <= state.stage < len(plan.stages):
        raise UnusableState(f"stage {state.stage} of a plan of {len(plan.stages)}")
    log.restore(state.history)
    best.restore(state.best_score, state.best)
    snapshots.restore(state.snapshots)
    model.set_weights(state.weights)
    batches.restore(state.done + state.epoch)
    first, done, initial = state.stage, state.done, state.epoch
    if initial >= plan.stages[first].epochs:  # that stage was over: the next one begins
        first, done, initial = first + 1, done + plan.stages[first].epochs, 0
    return first, done, initial


def _restore_optimizer(optimizer: keras.optimizers.Optimizer, values: list[np.ndarray]
                       ) -> None:
    variables = optimizer.variables
    shapes = [tuple(v.shape) for v in variables]
    if [tuple(np.shape(v)) for v in values] != shapes:
        raise UnusableState(f"its optimizer state is not this model's ({len(values)} arrays "
                            f"for {len(shapes)})")
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def measure_rates(spec: ModelSpec, settings: TrainSettings, steps: int = 8,
                  patience: float = 3.0, every_loss: bool = True) -> budget.Rates:
    """Time the model's training steps (each stage's loss, or the first stage's alone),
    its compilation and its prediction on this machine, on random images of the run's
    shapes. Each loss is timed for `steps` steps or `patience` seconds (at least two), and
    the median step counts, so one slow step does not make the machine look slow."""
    rng = np.random.default_rng(0)
    size, batch = settings.input_size, settings.batch_size
    model, predictor = build_models(spec, settings)
    x = rng.random((batch, size, size, 1), dtype=np.float32)
    y = (rng.random(x.shape) > 0.5).astype(np.float32)
    targets = (y, np.ones((batch, 1), np.float32)) if len(model.outputs) == 2 else y
    train, compiled = {}, []
    for stage in stage_plan(settings, 2)[:None if every_loss else 1]:
        if stage.loss in train:
            continue
        began = time.perf_counter()
        model.compile(optimizer=keras.optimizers.Adam(stage.learning_rate),
                      **training_loss(stage, settings, len(model.outputs)))
        model.train_on_batch(x, targets)
        compiled.append(time.perf_counter() - began)
        times: list[float] = []
        while len(times) < 2 or (len(times) < steps and sum(times) < patience):
            began = time.perf_counter()
            model.train_on_batch(x, targets)
            times.append(time.perf_counter() - began)
        train[stage.loss] = batch / statistics.median(times)
    images = rng.integers(0, 256, (4 * batch, inputs.SIZE, inputs.SIZE), dtype=np.uint8)

    def score(n: int) -> float:
        began = time.perf_counter()
        inference.levels([predictor], images[:n], size, settings.input_mode, settings.logits,
                       tta=False, batch_size=inference.batch_size(batch))
        return time.perf_counter() - began

    compiled[0] += score(batch)
    predicting = len(images) / score(len(images))
    inference.release([predictor])
    return budget.Rates(train, predicting, statistics.mean(compiled))


def _predict(models: list[keras.Model], settings: TrainSettings, val_images: np.ndarray,
             test_images: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    def levels(images: np.ndarray) -> np.ndarray:
        return inference.levels(models, images, settings.input_size, settings.input_mode,
                              settings.logits,
                              batch_size=inference.batch_size(settings.batch_size))

    oof = levels(val_images)
    test = levels(test_images) if test_images is not None and len(test_images) else None
    return oof, test

