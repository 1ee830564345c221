"""Training one fold: a function from settings and arrays to the fold's results.

`train_fold` compiles and fits the model stage by stage (BCE + Dice, then Lovász) with
callbacks that each do one job, the way Keras's own compose: `ValidationScore` puts the
competition score of the held-out images into each epoch's logs, and the callbacks after it
read it there (`KeepBest`, `Snapshots`, Keras's `EarlyStopping`, `ReduceLROnPlateau` and
`LearningRateScheduler`, `EpochLog`). Weights are kept in memory; nothing is written to
disk here, so the local loop and a remote worker call the same function and only the
driver writes the run folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from kagglesalt import budget, inputs, losses, metric, predict
from kagglesalt.augment import Augment
from kagglesalt.backend import enable_compilation_cache
from kagglesalt.errors import KaggleSaltError
from kagglesalt.model_spec import ModelSpec
from kagglesalt.progress import Reporter
from kagglesalt.schedule import Stage, stage_plan
from kagglesalt.settings import TrainSettings

PREFETCH_WORKERS = 2  # threads that augment the next batches while the device trains


@dataclass
class FoldResult:
    """What training a fold produces; `runs.Run.write_fold` stores it."""

    fold: int
    history: pd.DataFrame
    models: list[bytes]  # .keras files of the prediction models: the best epoch, or snapshots
    oof: np.ndarray  # uint8 levels of the validation images (TTA, mean of the models)
    test: np.ndarray | None  # uint8 levels of the test images
    score: float
    threshold: float
    seconds: float
    train_images: int

    @property
    def best_epoch(self) -> int:
        """The epoch with the best validation score (the kept one, without snapshots)."""
        return int(self.history.loc[self.history["val_score"].fillna(-1).idxmax(), "epoch"])


class Batches(keras.utils.PyDataset):
    """Shuffled, augmented training batches, made from the native 101x101 arrays.

    Every batch is full (the few images left over change each epoch with the order), so one
    compiled step serves the whole run. A batch's randomness depends only on (seed, epoch,
    index), so batches prepared ahead by worker threads are the same as in order."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, settings: TrainSettings,
                 seed: int, has_salt_target: bool = False, workers: int = PREFETCH_WORKERS):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.images, self.masks, self.s = images, masks, settings
        self.augment = Augment(**settings.augment)
        self.seed, self.epoch, self.has_salt_target = seed, 0, has_salt_target
        self.batch_size = min(settings.batch_size, len(images))
        self.order = self._order()

    def _order(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        idx = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
        images, masks = self.augment(self.images[idx] / np.float32(255), self.masks[idx], rng)
        x = inputs.to_input(images, self.s.input_size, self.s.input_mode)
        y = (inputs.to_input(masks, self.s.input_size, self.s.input_mode) > 0.5) \
            .astype(np.float32)
        if self.has_salt_target:
            return x, (y, masks.reshape(len(masks), -1).max(axis=1, keepdims=True))
        return x, y

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


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
        levels = predict.levels([self.predictor], self.images, self.s.input_size,
                                self.s.input_mode, self.s.logits, tta=False,
                                batch_size=self.s.batch_size * 2)
        search = metric.threshold_curve(self.truth, levels)
        logs["val_score"], logs["val_threshold"] = search.score, search.threshold
        if self.clock is not None:
            self.clock.record_scoring(time.perf_counter() - started)


class KeepBest(keras.callbacks.Callback):
    """Keeps, in memory, the weights of the epoch with the best `val_score`; one instance
    serves every stage, so the best is over the whole fold."""

    def __init__(self):
        super().__init__()
        self.best, self.weights = -math.inf, None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if logs.get("val_score", -math.inf) > self.best:
            self.best, self.weights = logs["val_score"], self.model.get_weights()


class Snapshots(keras.callbacks.Callback):
    """Keeps, in memory, the weights at the last epoch of each cosine cycle of the last
    stage."""

    def __init__(self, plan: Plan):
        super().__init__()
        self.plan, self.weights = plan, []

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch + 1 in self.plan.stages[-1].cycle_ends():
            self.weights.append(self.model.get_weights())


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


@dataclass
class FoldState:
    """Where a fold's training stands after an epoch: enough to continue it on a fresh
    process (weights, optimizer, schedule position, kept weights, history)."""

    stage: int  # the stage in progress
    epoch: int  # epochs finished in it
    done: int  # epochs of the stages before it
    stages: list[dict[str, Any]]
    history: list[dict[str, Any]]
    best_score: float
    seconds: float  # training time spent, which a budget's clock goes on from
    weights: list[np.ndarray]
    optimizer: list[np.ndarray]
    best: list[np.ndarray] | None
    snapshots: list[list[np.ndarray]]

    _LISTS = ("weights", "optimizer", "best")

    def pack(self) -> dict[str, np.ndarray]:
        """The state as named arrays (what `runs.Run.save_fold_state` stores)."""
        meta = {k: getattr(self, k) for k in ("stage", "epoch", "done", "stages", "history",
                                              "best_score", "seconds")}
        meta["snapshots"] = len(self.snapshots)
        meta["has_best"] = self.best is not None
        arrays = {"meta": np.array(json.dumps(meta, default=float))}
        for name in self._LISTS:
            for i, array in enumerate(getattr(self, name) or []):
                arrays[f"{name}/{i}"] = array
        for s, weights in enumerate(self.snapshots):
            for i, array in enumerate(weights):
                arrays[f"snapshot{s}/{i}"] = array
        return arrays

    @classmethod
    def unpack(cls, arrays: dict[str, np.ndarray]) -> FoldState:
        meta = json.loads(str(arrays["meta"]))

        def listed(prefix: str) -> list[np.ndarray]:
            count = sum(1 for k in arrays if k.startswith(f"{prefix}/"))
            return [arrays[f"{prefix}/{i}"] for i in range(count)]

        return cls(meta["stage"], meta["epoch"], meta["done"], meta["stages"],
                   meta["history"], meta["best_score"], meta["seconds"], listed("weights"),
                   listed("optimizer"), listed("best") if meta["has_best"] else None,
                   [listed(f"snapshot{s}") for s in range(meta["snapshots"])])


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
        self.save(FoldState(
            self.number, epoch + 1, self.done,
            [dataclasses.asdict(s) for s in self.plan.stages], list(self.log.rows),
            float(self.best.best), time.perf_counter() - self.started,
            self.model.get_weights(),
            [keras.ops.convert_to_numpy(v) for v in self.model.optimizer.variables],
            self.best.weights, list(self.snapshots.weights)))
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
        self.reporter, self.rows, self.stage, self.offset = reporter, [], "", 0

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


def rate_schedule(plan: Plan, number: int,
                  settings: TrainSettings) -> keras.callbacks.Callback:
    if settings.schedule == "cosine":
        return keras.callbacks.LearningRateScheduler(
            lambda epoch, _: plan.stages[number].cosine_rate(epoch))
    return keras.callbacks.ReduceLROnPlateau(monitor="val_score", mode="max", factor=0.5,
                                             patience=max(1, settings.patience // 2),
                                             min_delta=0.0)


def build_models(spec: ModelSpec, settings: TrainSettings) -> tuple[keras.Model, keras.Model]:
    """(the model to train, the one-output model that predicts). A model with a second,
    (N, 1) output trains it as an image-level 'has salt' logit (deep supervision); its
    first output must already use it, since only that one predicts."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(settings.precision)
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


def train_fold(spec: ModelSpec, settings: TrainSettings, train_images: np.ndarray,
               train_masks: np.ndarray, val_images: np.ndarray, val_masks: np.ndarray,
               test_images: np.ndarray | None = None, fold: int = 0, folds: int = 1,
               reporter: Reporter | None = None,
               within: budget.FoldBudget | None = None, resume: FoldState | None = None,
               save: Callable[[FoldState], None] | None = None,
               save_every: float = 30.0) -> FoldResult:
    """Train fold `fold` on uint8 images and bool masks (N, 101, 101); predict its
    validation and test images with the kept models (the best epoch's, or the snapshots).

    `within` a time budget, the fold starts from the settings' epochs and re-plans them
    after each epoch to end within the budget's seconds. With `save`, the fold's state is
    handed over after an epoch (every `save_every` seconds at most), and a fold given that
    state back as `resume` goes on from it instead of starting over."""
    started = time.perf_counter() - (resume.seconds if resume else 0.0)
    reporter = reporter or Reporter()
    enable_compilation_cache()
    keras.utils.set_random_seed(settings.seed + fold)
    model, predictor = build_models(spec, settings)
    outputs = len(model.outputs)
    batches = Batches(train_images, train_masks, settings, settings.seed + fold,
                      has_salt_target=outputs == 2)
    plan = Plan(stage_plan(settings))
    clock = None
    if within is not None:
        work = budget.Workload(len(train_images), len(val_images),
                               0 if test_images is None else len(test_images))
        clock = budget.FoldClock(within, settings, work, started)
    scorer = ValidationScore(predictor, val_images, val_masks, settings, plan, clock)
    best, log, snapshots, end = KeepBest(), EpochLog(reporter), Snapshots(plan), StageEnd(plan)
    pacer = Pacer(clock, plan, reporter, fold, len(batches)) if clock else None
    keeper = Checkpointer(save, save_every, plan, log, best, snapshots, started) \
        if save else None
    first, done, initial = 0, 0, 0
    if resume is not None:
        first, done, initial = _restore(resume, plan, log, best, snapshots, model, batches)
    reporter.fold_start(fold, folds, plan.epochs if resume else settings.epochs, len(batches))
    for number in range(first, len(plan.stages)):
        stage = plan.stages[number]
        resumed = resume is not None and number == first and initial > 0
        if number and not settings.snapshots and not resumed:
            model.set_weights(best.weights)  # a later stage starts from the best so far
        model.compile(optimizer=keras.optimizers.Adam(stage.learning_rate),
                      **training_loss(stage, settings, outputs))
        if resumed:  # the optimizer's moments and step count, as they were
            model.optimizer.build(model.trainable_variables)
            for variable, value in zip(model.optimizer.variables, resume.optimizer,
                                       strict=True):
                variable.assign(value)
        callbacks = [pacer.start_stage(number)] if pacer else []
        callbacks += [scorer.start_stage(number), best, rate_schedule(plan, number, settings),
                      log.start_stage(stage.loss, done)]
        if settings.snapshots and number == len(plan.stages) - 1:
            callbacks.append(snapshots)
        if not settings.snapshots:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_score", mode="max", patience=settings.patience, min_delta=0.0))
        if type(reporter).batch_end is not Reporter.batch_end:
            callbacks.append(BatchProgress(reporter))
        # Under a budget the stage may grow: fit runs until StageEnd says the plan is done.
        callbacks.append(end.start_stage(number))
        if keeper:
            callbacks.append(keeper.start_stage(number, done))
        model.fit(batches, epochs=within.most_epochs if clock else stage.epochs,
                  initial_epoch=initial if number == first else 0,
                  callbacks=callbacks, verbose=0)
        done += plan.stages[number].epochs
    kept = snapshots.weights if settings.snapshots else [best.weights]
    models = [_with_weights(predictor, weights) for weights in kept]
    oof, test = _predict(models, settings, val_images, test_images)
    predict.release([predictor, *models])
    search = metric.threshold_curve(val_masks, oof)
    result = FoldResult(fold, pd.DataFrame(log.rows), [model_bytes(m) for m in models], oof,
                        test, search.score, search.threshold, time.perf_counter() - started,
                        len(train_images))
    reporter.fold_end(fold, search.score)
    return result


def _restore(state: FoldState, plan: Plan, log: EpochLog, best: KeepBest,
             snapshots: Snapshots, model: keras.Model, batches: Batches
             ) -> tuple[int, int, int]:
    """Put a saved fold state back; returns (first stage to train, epochs before it, epochs
    of it already done)."""
    plan.stages = [Stage(**{**s, "ends": tuple(s.get("ends") or ())}) for s in state.stages]
    log.rows = list(state.history)
    best.best, best.weights = state.best_score, state.best
    snapshots.weights = list(state.snapshots)
    model.set_weights(state.weights)
    batches.epoch = state.done + state.epoch  # the same shuffles and augmentations as before
    batches.order = batches._order()
    first, done, initial = state.stage, state.done, state.epoch
    if initial >= plan.stages[first].epochs:  # that stage was over: the next one begins
        first, done, initial = first + 1, done + plan.stages[first].epochs, 0
    return first, done, initial


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
        predict.levels([predictor], images[:n], size, settings.input_mode, settings.logits,
                       tta=False, batch_size=batch * 2)
        return time.perf_counter() - began

    compiled[0] += score(batch)
    predicting = len(images) / score(len(images))
    predict.release([predictor])
    return budget.Rates(train, predicting, statistics.mean(compiled))


def _predict(models: list[keras.Model], settings: TrainSettings, val_images: np.ndarray,
             test_images: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    def levels(images: np.ndarray) -> np.ndarray:
        return predict.levels(models, images, settings.input_size, settings.input_mode,
                              settings.logits, batch_size=max(64, settings.batch_size * 2))

    oof = levels(val_images)
    test = levels(test_images) if test_images is not None and len(test_images) else None
    return oof, test

