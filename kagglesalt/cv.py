"""`kagglesalt cv`: K-fold training of a registered model into a resumable run folder.

This is the driver: it checks the options, reads the data, trains each unfinished fold with
`fold.train_fold` (a function of settings and arrays) and lets `runs.Run` write the results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kagglesalt import __version__, data, plugins, timestamps
from kagglesalt.atomic import clean_leftovers
from kagglesalt.competition import metric, postprocess
from kagglesalt.data import folds
from kagglesalt.errors import KaggleSaltError, Message, option
from kagglesalt.model import budget, schedule, settings
from kagglesalt.model.backend import Device, device, keras_backend
from kagglesalt.model.fold import measure_rates, train_fold
from kagglesalt.model.results import FoldJob, FoldState, UnusableState
from kagglesalt.model.spec import ModelSpec
from kagglesalt.progress import Reporter, Silent
from kagglesalt.workspace import Workspace, check_name, locks, pseudo
from kagglesalt.workspace.runs import DataRecord, Run, RunConfig, RunScores


@dataclass(frozen=True)
class CVOptions:
    """What the user asked for. `settings` holds the training settings given (see
    `settings.TrainSettings`); the others are the model's defaults."""

    model: str = "unet"
    folds: int = 5
    name: str | None = None
    plugins_dir: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    ray: str | None = None  # None: folds one after another here; else a Ray address or "local"
    cpus_per_fold: float = 1.0
    gpus_per_fold: float | None = None  # None: 1 where the Ray cluster has GPUs, else 0
    # A time budget for the whole run, reading the data included: the epochs are chosen to
    # fit it on this machine (not with an "epochs" setting), and each fold re-plans its own.
    minutes: float | None = None
    most_epochs: int = budget.MAX_EPOCHS  # per fold, however much time a budget leaves
    # Train only these folds now (None: every unfinished one); the run is finished by the
    # call that trains its last fold.
    folds_to_train: tuple[int, ...] | None = None
    # A finished run or ensemble whose confident test predictions train every fold as
    # extra images (`workspace.pseudo`); never scored.
    pseudo: str | None = None
    pseudo_confidence: float = 0.97


def no_data_message(data_dir: str | Path) -> Message:
    return Message(f"no competition data in {data_dir}: fill it with `kagglesalt download` "
                   "(the real data, with Kaggle credentials), `kagglesalt synth` (a synthetic "
                   "set) or `kagglesalt demo` (a synthetic set and the whole workflow), or "
                   f"point {option('data_dir')} at the folder that holds train/images")


def _versions() -> dict[str, str]:
    out = {"kagglesalt": __version__, "python": sys.version.split()[0]}
    for package in ("keras", "numpy", "tensorflow", "tensorflow-cpu", "jax", "jaxlib",
                    "torch"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[package] = importlib.metadata.version(package)
    out["backend"] = keras_backend()
    return out


def prepare(ws: Workspace, options: CVOptions) -> tuple[ModelSpec,
                                                         settings.TrainSettings]:
    """Every check that needs no training: the options, and the data is there."""
    spec, chosen = check_options(options)
    if not data.has_train(ws.data_dir):
        raise KaggleSaltError(no_data_message(ws.data_dir))
    data.sample_submission_ids(ws.data_dir)  # the test predictions' ids and order, or one line
    return spec, chosen


def check_options(options: CVOptions) -> tuple[ModelSpec, settings.TrainSettings]:
    """Every check that needs no data: the name, the model, its settings, the folds."""
    if options.name is not None:
        check_name(options.name, "run")
    spec = plugins.get_model(options.model, options.plugins_dir)
    chosen = spec.training_settings(options.settings)
    if options.minutes is not None and options.settings.get("epochs") is not None:
        raise KaggleSaltError("give a number of epochs or a time budget in minutes, not "
                              "both: the budget chooses the epochs that fit this machine")
    if options.minutes is not None and options.minutes <= 0:
        raise KaggleSaltError(f"a time budget of {options.minutes:g} minutes: give more")
    if options.folds < 2:
        raise KaggleSaltError(f"{option('folds', options.folds)}: K-fold needs at least 2 folds")
    return spec, chosen


def run_cv(ws: Workspace, options: CVOptions, reporter: Reporter | None = None,
           rates: budget.Rates | None = None) -> Run:
    """Train every fold not yet finished, then write OOF, test predictions and scores.

    Before training, the model is timed on this machine (unless `rates` are given), which
    gives the whole run's ETA and, with `options.minutes`, the epochs that fit the budget.
    Everything is checked before the run folder is written, and a run folder that holds no
    finished fold is started over rather than refused."""
    started = time.perf_counter()
    reporter = reporter or Silent()
    spec, chosen = prepare(ws, options)
    name = options.name or f"{options.model}-k{options.folds}-s{chosen.seed}"
    run = Run(Path(ws.runs_dir) / name)
    # The lock first: a `runs rm` or `runs mv` while the data is read and the model timed
    # would otherwise succeed, and this process then write a second run under the old name.
    new_root = not Path(ws.runs_dir).exists()
    with locks.holding(run.path, f"run {name}"):  # one writer per run folder
        try:
            _refuse_a_run_on_kaggle(run)
            return _read_and_train(ws, options, reporter, rates, started, spec, chosen, run)
        finally:
            drop_if_empty(run.path, new_root)


def _refuse_a_run_on_kaggle(run: Run) -> None:
    """A run pushed to Kaggle trains there until it comes home: folds trained here too
    would be replaced by the kernel's."""
    from kagglesalt import kernels

    record = kernels.read_record(run.path)
    if record is not None and not record.home:
        raise KaggleSaltError(
            f"run {run.name} trains on Kaggle (kernel {record.kernel} version "
            f"{record.version}): `kagglesalt cv --name {run.name} --on-kaggle` follows it and "
            f"brings it home, or give a new {option('name')}")


def drop_if_empty(folder: Path, new_root: bool) -> None:
    """The run folder the lock made, when nothing was written into it (the data was
    refused, say): it would list as a run of nothing; and the runs folder, if the lock
    made that too."""
    with contextlib.suppress(OSError):
        if {p.name for p in folder.iterdir()} <= {locks.LOCK, locks.HOLDER}:
            for p in folder.iterdir():
                p.unlink(missing_ok=True)
            folder.rmdir()
            if new_root:
                folder.parent.rmdir()  # only if empty


def _read_and_train(ws: Workspace, options: CVOptions, reporter: Reporter,
                    rates: budget.Rates | None, started: float, spec: ModelSpec,
                    chosen: settings.TrainSettings, run: Run) -> Run:
    cluster = None
    if options.ray is not None:
        from kagglesalt import distributed

        cluster = distributed.connect(options.ray, options.cpus_per_fold,
                                      options.gpus_per_fold)
    here = device()
    reporter.message(f"Training {options.model} on {here.describe()}")
    unused_gpu = here.warning()
    if unused_gpu:
        reporter.message(unused_gpu)
    reporter.message(f"Reading the data set in {ws.data_dir} (decoded once, then cached)")
    train = data.load_train(ws.data_dir)
    test = data.load_test(ws.data_dir)
    if not train.has_depths:
        reporter.message(f"No depths.csv in {ws.data_dir}: depths are unknown, so reports "
                         "leave their depth panel empty")
    assignment = folds.assign_folds(train.coverage, options.folds, chosen.seed)
    labels = None
    if options.pseudo is not None:
        labels = pseudo.select(ws, options.pseudo, options.pseudo_confidence, list(test.ids),
                               test.images, train.fingerprint(), run.name)
        reporter.message(f"Pseudo-labels: {len(labels.images)} of {labels.of} test images "
                         f"from {labels.source} (at least {labels.confidence:.0%} of their "
                         "pixels sure) train every fold; every score stays on the real "
                         "labels")
    return _train(ws, options, reporter, rates, started, spec, chosen, cluster, here, train,
                  test, assignment, run, labels)


def _train(ws: Workspace, options: CVOptions, reporter: Reporter, rates: budget.Rates | None,
           started: float, spec: ModelSpec, chosen: settings.TrainSettings, cluster,
           here: Device, train: data.Split, test: data.Split, assignment: np.ndarray,
           run: Run, labels: pseudo.PseudoLabels | None = None) -> Run:
    """The part of `run_cv` that writes the run folder, under its lock."""
    name = run.name
    done = [k for k in range(options.folds) if run.fold_written(k)]
    finished = [k for k in done if run.fold_problem(k) is None]
    # A finished fold that is not whole here (its models left on the machine that trained
    # it, say) is kept as it is when this call trains other folds: its predictions finish
    # the run.
    kept = [k for k in done if k not in finished and options.folds_to_train is not None
            and k not in options.folds_to_train]
    resuming = run.started and bool(finished or kept)
    extra = (labels.images, labels.masks) if labels is not None else None
    work = budget.Workload.of_folds(len(train), len(test), options.folds,
                                    len(labels.images) if labels is not None else 0)
    chosen, rates, plan = _plan(options, run, resuming, spec, chosen, work, rates, started,
                                here, cluster, len(train), reporter)
    config = RunConfig(
        name=name, model=options.model, model_source=spec.source, folds=options.folds,
        seed=chosen.seed, settings=settings.as_config(chosen),
        data=DataRecord(str(Path(ws.data_dir).resolve()), len(train), len(test),
                        train.fingerprint(), test.fingerprint()),
        versions=_versions(), command=" ".join(sys.argv), created=timestamps.now(),
        device=here.describe(), rates=rates.to_config(),
        budget=plan.to_config() if plan is not None else None,
        pseudo=labels.record() if labels is not None else None)
    if resuming:
        old = run.config
        if old.identity() != config.identity():
            differences = config.differences(old)
            # Never advise what throws finished folds away.
            point = f"point {option('data_dir')} at the data it was trained on, or " \
                if "data" in differences else ""
            raise KaggleSaltError(f"run {name} exists with different "
                                  f"{', '.join(differences)}: {point}give a new "
                                  f"{option('name')} (its finished folds stay as they are)")
        config = dataclasses.replace(config, created=old.created)
        reporter.message(f"Resuming run {name}: {len(finished) + len(kept)} of "
                         f"{options.folds} folds already trained")
    run.start(config, train.ids, assignment, test.ids)

    pending = _folds_to_train(run, options, done, finished, kept, reporter)
    clean_leftovers(run.path)  # writes a killed process left behind, under the run's lock
    if pending:
        run.unfinish()
    estimate = budget.run_seconds(chosen, work, len(pending), rates, len(train))
    _say_plan(reporter, options, spec, chosen, rates, plan, estimate, len(pending))
    last = schedule.stage_plan(chosen)[-1]
    if chosen.snapshots and len(last.cycle_ends()) < chosen.snapshots:
        reporter.message(f"{chosen.epochs} epochs leave the last stage {last.epochs}: "
                         f"{len(last.cycle_ends())} snapshot(s) instead of {chosen.snapshots}")
    progress = budget.RunProgress(reporter, chosen, work, rates, options.folds, len(train),
                                  f"cv {name}")
    progress.start([k for k in range(options.folds) if k not in pending])
    # A resumed budget run, or one training some of its folds, gives them their share of
    # the budget.
    deadline = None
    if plan is not None:
        deadline = time.perf_counter() + plan.minutes * 60 * len(pending) / options.folds \
            if resuming or len(pending) < options.folds else started + plan.minutes * 60

    def key_of(k: int) -> str:
        """What a fold's checkpoint was trained with: one of other settings, folds, data or
        pseudo-labels is not gone on from."""
        return json.dumps({"settings": settings.as_config(chosen), "fold": k,
                           "folds": options.folds, "data": train.fingerprint(),
                           "pseudo": config.pseudo}, sort_keys=True)

    def kept_state(k: int) -> FoldState | None:
        """An interrupted fold's last kept epoch, if trained as now (a damaged one is set
        aside, and the fold starts over)."""
        try:
            return run.fold_state(k, key_of(k))
        except UnusableState as e:
            return _set_aside(run, k, options.folds, e, reporter)

    if cluster is not None:
        from kagglesalt import distributed

        states = {k: state.pack() for k in pending if (state := kept_state(k)) is not None}
        within = None
        if deadline is not None:  # folds in waves of as many as the cluster runs at once
            waves = math.ceil(len(pending) / max(1, cluster.slots()))
            within = budget.FoldBudget((deadline - time.perf_counter() -
                                        budget.finish_seconds(len(train))) / waves, rates,
                                       options.most_epochs)
        distributed.train_folds(cluster, options.model, settings.as_config(chosen),
                                train.images, train.truth, assignment, test.images, pending,
                                options.folds, options.plugins_dir, run.write_fold, progress,
                                within, extra, states,
                                lambda k, arrays: run.save_fold_state(k, arrays, key_of(k)))
    else:
        for number, k in enumerate(pending):
            within = None
            if deadline is not None:  # the time left, shared by the folds still to train
                within = budget.FoldBudget((deadline - time.perf_counter() -
                                            budget.finish_seconds(len(train))) /
                                           (len(pending) - number), rates, options.most_epochs)
            resume = kept_state(k)

            def save(state: FoldState, k: int = k) -> None:
                run.save_fold_state(k, state.pack(), key_of(k))

            job = FoldJob.of(train.images, train.truth, assignment, k, options.folds,
                             test.images, extra)

            def fit_fold(resume: FoldState | None, job: FoldJob = job, within=within,
                         save=save):
                return train_fold(spec, chosen, job, progress, within, resume, save)

            try:
                result = fit_fold(resume)
            except UnusableState as e:  # found before any training: the fold starts over
                result = fit_fold(_set_aside(run, k, options.folds, e, reporter))
            run.write_fold(result)
    if all(run.fold_summary(k) is not None for k in range(options.folds)):
        _finish(run, train, test, assignment, options.folds)
    progress.finish()
    return run


def _plan(options: CVOptions, run: Run, resuming: bool, spec: ModelSpec,
          chosen: settings.TrainSettings, work: budget.Workload, rates: budget.Rates | None,
          started: float, here: Device, cluster, n_train: int, reporter: Reporter
          ) -> tuple[settings.TrainSettings, budget.Rates, budget.Budget | None]:
    """The settings with the epochs a budget allows, the rates they were planned with, and
    the budget's plan (None without `--minutes`): a run resumed keeps its plan; otherwise
    the model is timed here (unless `rates` are given) and the epochs chosen to fit."""
    # A budget run cut short keeps its plan, so that its folds' checkpoints still fit it.
    planned = run.config.budget if resuming or (
        run.started and run.has_checkpoints()) else None
    if options.minutes is not None and planned and planned["minutes"] == options.minutes:
        plan = budget.Budget.from_config(planned)  # a resumed run keeps its plan
        rates = plan.rates
    else:
        if rates is None:
            reporter.message(f"Timing {options.model} on this machine")
            # A budget needs each stage's rate; an ETA is fine with the first one's.
            rates = measure_rates(spec, chosen, steps=8 if options.minutes else 3,
                                  every_loss=options.minutes is not None)
        plan = None
        if options.minutes is not None:
            left = options.minutes * 60 - (time.perf_counter() - started)
            if cluster is None:  # on Ray the workers, maybe faster, keep their own clocks
                _refuse_a_budget_too_small(options, chosen, work, rates, n_train, left,
                                           time.perf_counter() - started)
            epochs = budget.choose_epochs(left, chosen, work, options.folds, rates, n_train,
                                          options.most_epochs)
            plan = budget.Budget(options.minutes, epochs, rates, here.describe())
    if plan is not None:
        chosen = dataclasses.replace(chosen, epochs=plan.epochs)
    return chosen, rates, plan


def _folds_to_train(run: Run, options: CVOptions, done: list[int], finished: list[int],
                    kept: list[int], reporter: Reporter) -> list[int]:
    """The folds this call trains, each cleared of what an unfinished try left; says what
    becomes of the others."""
    pending = []
    for k in range(options.folds):
        if k in finished:
            run.drop_checkpoint(k)  # one a kill left between done.json and its removal
            reporter.message(f"fold {k + 1}/{options.folds} already trained: "
                             f"score {run.finished_fold(k).score:.4f}")
            continue
        if k in kept:
            reporter.message(f"fold {k + 1}/{options.folds} is not whole "
                             f"({run.fold_problem(k)}): its predictions are kept, since it is "
                             "not among the folds trained now")
            continue
        if k in done:
            reporter.message(f"fold {k + 1}/{options.folds} is not whole "
                             f"({run.fold_problem(k)}): training it again")
        if options.folds_to_train is None or k in options.folds_to_train:
            run.clear_fold(k)  # a fold cut short, or damaged, starts over
            pending.append(k)
    return pending


def _refuse_a_budget_too_small(options: CVOptions, chosen: settings.TrainSettings,
                               work: budget.Workload, rates: budget.Rates, n_train: int,
                               left: float, spent: float) -> None:
    """A budget is an upper bound: one that cannot hold even the smallest plan (an epoch
    per stage and snapshot in every fold) is refused before training, with what it takes."""
    least = dataclasses.replace(chosen, epochs=budget.least_epochs(chosen))
    needed = budget.run_seconds(least, work, options.folds, rates, n_train)
    if needed <= left:
        return
    minutes = math.ceil((needed + spent) / 60)
    raise KaggleSaltError(
        f"a budget of {options.minutes:g} minutes cannot hold even the smallest plan of "
        f"{options.model} here ({least.epochs} epoch(s) in each of {options.folds} folds, "
        f"{n_train} training images at {min(rates.train.values()):.0f} images/s: about "
        f"{needed / 60:.1f} minutes after {spent:.0f} s of reading and timing): give "
        f"{option('minutes', minutes)} or more, fewer folds, or a smaller data set")


def _set_aside(run: Run, k: int, folds: int, problem: UnusableState,
               reporter: Reporter) -> FoldState | None:
    """A checkpoint that does not load is moved aside, said in one line, and the fold
    starts from its beginning."""
    aside = run.set_aside_checkpoint(k)
    reporter.message(f"fold {k + 1}/{folds}: its checkpoint does not load ({problem}); moved "
                     f"to {aside} and the fold starts over")
    return None  # the state to resume from: none


def _say_plan(reporter: Reporter, options: CVOptions, spec: ModelSpec,
              chosen: settings.TrainSettings,
              rates: budget.Rates, plan: budget.Budget | None, estimate: float,
              pending: int) -> None:
    speed = f"{min(rates.train.values()):.0f} training images/s"
    if plan is not None:
        reporter.message(f"Budget {plan.minutes:.3g} minutes: {pending} fold(s) of about "
                         f"{chosen.epochs} epochs at {speed} (re-planned as they go)")
        if chosen.epochs < spec.learns_in:
            more = plan.minutes * spec.learns_in / max(chosen.epochs, 1)
            reporter.message(Message(
                f"Too few epochs to learn: {options.model} needs about {spec.learns_in} "
                f"before it finds salt at all (with fewer it scored below a submission of "
                f"empty masks), and this budget buys {chosen.epochs} here; give about "
                f"{option('minutes', f'{math.ceil(more)}')}"
                + (f", or {option('folds', 2)}" if options.folds > 2 else "")))
        return
    hours = estimate / 3600
    reporter.message(f"{pending} fold(s) of {chosen.epochs} epochs at {speed}: about "
                     f"{_duration(estimate)} on this machine")
    if hours > budget.HOURS_WORTH_SAYING:
        finish = time.strftime("%a %H:%M", time.localtime(time.time() + estimate))
        reporter.message(Message(
            f"This run would end around {finish}, {_duration(estimate)} from now: give a "
            f"time budget ({option('minutes', 'N')}) to fit it to this machine, or train on a "
            "GPU"))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _finish(run: Run, train: data.Split, test: data.Split, assignment: np.ndarray,
            n_folds: int) -> Run:
    oof = np.zeros(train.truth.shape, np.uint8)
    for k in range(n_folds):
        oof[assignment == k] = run.fold_oof(k)
    total = metric.mean_levels([run.fold_test(k) for k in range(n_folds)]) \
        if len(test) else None
    search = metric.threshold_curve(train.truth, oof)
    post = postprocess.search(train.truth, metric.binarize(oof, search.threshold))
    run.finish(oof, total, RunScores(
        search.score, search.threshold,
        {"thresholds": search.thresholds.round(4).tolist(),
         "scores": search.scores.round(6).tolist()},
        dataclasses.asdict(post.best), post.score, metric.empty_score(train.truth)))
    return run
