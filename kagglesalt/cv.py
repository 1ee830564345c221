"""`kagglesalt cv`: K-fold training of a registered model into a resumable run folder."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kagglesalt import __version__, data, folds, metric, plugins, predict, synth
from kagglesalt.atomic import atomic_open, save_npy, write_json
from kagglesalt.augment import Augment
from kagglesalt.errors import KaggleSaltError
from kagglesalt.runs import Run
from kagglesalt.train import Reporter, TrainSettings, train_fold
from kagglesalt.workspace import Workspace

SYNTHETIC_TRAIN, SYNTHETIC_TEST = 4000, 1000


@dataclass(frozen=True)
class CVOptions:
    """What the user asked for; None means the model's default."""

    model: str = "unet"
    folds: int = 5
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    loss: str | None = None
    schedule: str | None = None
    input_mode: str | None = None
    patience: int = 10
    seed: int = 42
    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, float] = field(default_factory=dict)
    plugins_dir: str | None = None


def settings_for(spec: plugins.ModelSpec, options: CVOptions) -> TrainSettings:
    def pick(key: str) -> Any:
        value = getattr(options, key)
        return spec.default(key) if value is None else value

    unknown = set(options.params) - set(spec.params)
    if unknown:
        raise KaggleSaltError(f"model {spec.name} has no parameter {sorted(unknown)[0]}: "
                              f"it takes {', '.join(sorted(spec.params)) or 'none'}")
    augments = {f.name for f in dataclasses.fields(Augment)}
    unknown = set(options.augment) - augments
    if unknown:
        raise KaggleSaltError(f"no augmentation '{sorted(unknown)[0]}': choose from "
                              f"{', '.join(sorted(augments))}")
    return TrainSettings(
        input_size=spec.default("input_size"), input_mode=pick("input_mode"),
        logits=spec.default("logits"), loss=pick("loss"), epochs=pick("epochs"),
        batch_size=pick("batch_size"), learning_rate=pick("learning_rate"),
        schedule=pick("schedule"), patience=options.patience, seed=options.seed,
        params={**spec.params, **options.params}, augment=dict(options.augment))


def ensure_data(ws: Workspace, reporter: Reporter) -> None:
    """The embedded default: with no data present, a synthetic set is generated."""
    if not data.has_train(ws.data_dir):
        reporter.message(f"No competition data in {ws.data_dir}: using the embedded default, "
                         f"a synthetic set of {SYNTHETIC_TRAIN} training and {SYNTHETIC_TEST} "
                         "test images (`kagglesalt download` fetches the real one).")
        synth.generate(ws.data_dir, SYNTHETIC_TRAIN, SYNTHETIC_TEST)


def _versions() -> dict[str, str]:
    import keras

    out = {"kagglesalt": __version__, "python": sys.version.split()[0]}
    for package in ("keras", "numpy", "tensorflow", "tensorflow-cpu", "jax", "jaxlib",
                    "torch"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[package] = importlib.metadata.version(package)
    out["backend"] = keras.backend.backend()
    return out


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a config that must match for a rerun to resume a run."""
    return {k: config[k] for k in ("model", "folds", "seed", "settings", "data")}


def run_cv(ws: Workspace, options: CVOptions, reporter: Reporter | None = None) -> Run:
    """Train every fold not yet finished, then write OOF, test predictions and scores."""
    reporter = reporter or Reporter()
    spec = plugins.get_model(options.model, options.plugins_dir)
    settings = settings_for(spec, options)
    ensure_data(ws, reporter)
    reporter.message(f"Reading the data set in {ws.data_dir} (decoded once, then cached)")
    train = data.load_train(ws.data_dir)
    test = data.load_test(ws.data_dir)
    name = options.name or f"{options.model}-k{options.folds}-s{options.seed}"
    run = Run(Path(ws.runs_dir) / name)
    config = {
        "name": name, "model": options.model, "model_source": spec.source,
        "folds": options.folds, "seed": options.seed, "settings": asdict(settings),
        "data": {"dir": str(Path(ws.data_dir).resolve()), "train": len(train),
                 "test": len(test), "fingerprint": train.fingerprint(),
                 "test_fingerprint": test.fingerprint()},
        "versions": _versions(), "command": " ".join(sys.argv),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if (run.path / "config.json").exists():
        old = run.config
        if _identity(old) != _identity(config):
            changed = [k for k in _identity(config) if _identity(old)[k] != config[k]]
            raise KaggleSaltError(f"run {name} exists with different {', '.join(changed)}: "
                                  "give a new --name, or delete the folder to start over")
        config["created"] = old["created"]
        reporter.message(f"Resuming run {name}")
    assignment = folds.assign_folds(train.coverage, options.folds, options.seed)
    run.path.mkdir(parents=True, exist_ok=True)
    write_json(run.path / "config.json", config)
    folds.write_folds(run.path / "folds.csv", train.ids, assignment)
    if len(test):
        with atomic_open(run.path / "test_ids.csv", "w", newline="") as f:
            pd.DataFrame({"id": test.ids}).to_csv(f, index=False)

    fold_scores = []
    for k in range(options.folds):
        fold_dir = run.path / f"fold_{k}"
        done = fold_dir / "done.json"
        if done.exists():
            fold_scores.append(json.loads(done.read_text()))
            reporter.message(f"fold {k + 1}/{options.folds} already trained: "
                             f"score {fold_scores[-1]['score']:.4f}")
            continue
        shutil.rmtree(fold_dir, ignore_errors=True)  # a fold cut short starts over
        fold_scores.append(_train_one_fold(spec, settings, train, test, assignment, k,
                                           options.folds, fold_dir, reporter))
    return _finish(run, train, test, assignment, fold_scores, options.folds)


def _train_one_fold(spec, settings, train: data.Split, test: data.Split,
                    assignment: np.ndarray, k: int, n_folds: int, fold_dir: Path,
                    reporter: Reporter) -> dict[str, Any]:
    valid = assignment == k
    started = time.perf_counter()
    model, history = train_fold(spec, settings, train.images[~valid], train.masks[~valid],
                                train.images[valid], train.masks[valid], fold_dir,
                                reporter, k, n_folds)
    history.to_csv(fold_dir / "history.csv", index=False)
    oof = predict.levels(model, train.images[valid], settings.input_size, settings.input_mode,
                         settings.logits, batch_size=settings.batch_size * 2)
    save_npy(fold_dir / "oof.npy", oof)
    if len(test):
        save_npy(fold_dir / "test.npy", predict.levels(
            model, test.images, settings.input_size, settings.input_mode, settings.logits,
            batch_size=settings.batch_size * 2))
    search = metric.threshold_curve(train.masks[valid], oof)
    result = {"fold": k, "score": search.score, "threshold": search.threshold,
              "best_epoch": int(history.loc[history["val_score"].idxmax(), "epoch"]),
              "epochs_run": len(history), "seconds": round(time.perf_counter() - started, 1),
              "train_images": int((~valid).sum()), "valid_images": int(valid.sum())}
    write_json(fold_dir / "done.json", result)
    reporter.fold_end(k, search.score)
    return result


def _finish(run: Run, train: data.Split, test: data.Split, assignment: np.ndarray,
            fold_scores: list[dict[str, Any]], n_folds: int) -> Run:
    oof = np.zeros(train.masks.shape, np.uint8)
    total = np.zeros((len(test), data.SIZE, data.SIZE), np.uint16) if len(test) else None
    for k in range(n_folds):
        fold_dir = run.path / f"fold_{k}"
        oof[assignment == k] = np.load(fold_dir / "oof.npy")
        if total is not None:
            total += np.load(fold_dir / "test.npy", mmap_mode="r")
    save_npy(run.path / "oof.npy", oof)
    if total is not None:
        # The rounded mean in integers, in place: float copies of 18,000 maps cost 734 MB each.
        total += n_folds // 2
        total //= n_folds
        save_npy(run.path / "test.npy", total.astype(np.uint8))
    search = metric.threshold_curve(train.masks, oof)
    write_json(run.path / "scores.json", {
        "oof": {"score": search.score, "threshold": search.threshold},
        "folds": fold_scores,
        "curve": {"thresholds": search.thresholds.round(4).tolist(),
                  "scores": search.scores.round(6).tolist()},
    })
    return run
