"""A run folder: what `kagglesalt cv` writes and what ensemble, report and score read.

    runs/<name>/config.json      everything needed to rerun it
    runs/<name>/folds.csv        id -> fold, in training-set order
    runs/<name>/test_ids.csv     the order of test.npy's images
    runs/<name>/fold_<k>/        model_<i>.keras (the best epoch, or each snapshot),
                                 history.csv, oof.npy, test.npy, done.json (its summary)
    runs/<name>/oof.npy          uint8 out-of-fold probability levels, every train id
    runs/<name>/test.npy         uint8 TTA, fold-averaged test probability levels
    runs/<name>/scores.json      per-fold and OOF competition score, threshold, curve

This module is the one that writes and reads these files; the others ask it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kagglesalt.atomic import atomic_open, save_npy, write_bytes, write_json
from kagglesalt.competition.rle import SIZE
from kagglesalt.data import folds
from kagglesalt.errors import KaggleSaltError, option
from kagglesalt.model.results import FoldState, UnusableState
from kagglesalt.workspace.records import DataRecord, FoldSummary, RunConfig, RunScores

__all__ = ["CHECKPOINT", "DAMAGED_CHECKPOINT", "DELETED", "DataRecord", "FoldSummary", "Run",
           "RunConfig", "RunScores", "all_runs", "differences", "finished_runs", "latest",
           "open_run", "references", "remove", "rename"]

CHECKPOINT = "checkpoint.npz"  # an unfinished fold's training state
DAMAGED_CHECKPOINT = "checkpoint.damaged.npz"  # one that did not load, kept for a look
DELETED = ".deleted"  # a run folder `runs rm` moved aside, being deleted

if TYPE_CHECKING:
    from kagglesalt.model.results import FoldResult

@dataclass(frozen=True)
class Run:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def _record(self, name: str, kind):
        path = self.path / name
        try:
            return kind.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise KaggleSaltError(f"{self.path} has no {name}: is it a finished run? "
                                  "Rerun its `kagglesalt cv` command to finish it") from None
        except (ValueError, TypeError, KeyError, AttributeError):
            if name == "config.json":  # the folds cannot be matched to it any more
                raise KaggleSaltError(f"{path} is damaged: rerun the run's `kagglesalt cv` "
                                      f"command into a new {option('name')} (this run's "
                                      "files stay as they are)") from None
            raise KaggleSaltError(f"{path} is damaged: rerun the run's `kagglesalt cv` "
                                  "command, which keeps its finished folds and writes it "
                                  "again") from None

    @property
    def config(self) -> RunConfig:
        return self._record("config.json", RunConfig)

    @property
    def scores(self) -> RunScores:
        return self._record("scores.json", RunScores)

    def created(self) -> str:
        """When the run was made; "" when its config.json cannot be read."""
        try:
            return self.config.created
        except KaggleSaltError:
            return ""

    def require_finished(self) -> None:
        if not self.finished:
            raise KaggleSaltError(f"run {self.name} is not finished: rerun its `kagglesalt cv` "
                                  "command to finish it")

    def check_data(self, split, data_dir: str | os.PathLike, part: str = "train") -> None:
        """Refuse data (a `data.Split`) other than the `part` this run was trained on or
        predicted."""
        record = self.config.data
        expected = record.fingerprint if part == "train" else record.test_fingerprint
        if expected and split.fingerprint() != expected:
            raise KaggleSaltError(f"the {part} images in {data_dir} are not those run "
                                  f"{self.name} used: point {option('data_dir')} at that data")

    @property
    def finished(self) -> bool:
        return (self.path / "scores.json").exists()

    @property
    def started(self) -> bool:
        """Whether `kagglesalt cv` has written this run's config.json."""
        return (self.path / "config.json").exists()

    def finished_at(self) -> float:
        """When the run was finished (its scores written), as a timestamp."""
        return (self.path / "scores.json").stat().st_mtime

    def fold_written(self, k: int) -> bool:
        """Whether fold k's done.json exists (whole or not: see `fold_problem`)."""
        return (self.fold_dir(k) / "done.json").exists()

    @property
    def n_folds(self) -> int:
        return int(self.config.folds)

    def folds_done(self) -> int:
        return sum(self.fold_summary(k) is not None for k in range(self.n_folds))

    @property
    def oof_score(self) -> float | None:
        return self.scores.score if self.finished else None

    @property
    def threshold(self) -> float:
        """The probability threshold chosen on the run's OOF predictions."""
        return self.scores.threshold

    def postprocess(self):
        """The post-processing chosen on the run's OOF (none for runs made before it was)."""
        from kagglesalt.competition.postprocess import PostProcess

        chosen = self.scores.postprocess
        return PostProcess(chosen.get("min_component", 0), chosen.get("min_area", 0))

    def fold_scores(self) -> list[float | None]:
        return [s.score if s else None for s in map(self.fold_summary, range(self.n_folds))]

    def settings(self):
        return self.config.train_settings()

    def write_oof_csv(self, path: str | os.PathLike | None = None) -> Path:
        """The out-of-fold masks at the OOF threshold as a submission-format CSV."""
        from kagglesalt.competition import metric, submission

        return submission.write(path or self.path / "oof.csv", list(self.folds()["id"]),
                                metric.binarize(self.oof(), self.threshold))

    def folds(self) -> pd.DataFrame:
        """id -> fold of every training image, as `folds.csv` holds them."""
        path = self.path / "folds.csv"
        table = _read_table(path, lambda: folds.read_folds(path), ["id", "fold"])
        if len(table) != self.config.data.train or not table["fold"].between(
                0, self.n_folds - 1).all():
            raise KaggleSaltError(f"{path} is damaged ({len(table)} of "
                                  f"{self.config.data.train} rows, or folds out of range): "
                                  "rerun the run's `kagglesalt cv` command, which writes it "
                                  "again and keeps the finished folds")
        return table

    def test_ids(self) -> list[str]:
        path = self.path / "test_ids.csv"
        if not path.exists():
            return []
        ids = list(_read_table(path, lambda: pd.read_csv(path, dtype=str,
                                                          keep_default_na=False),
                               ["id"])["id"])
        if len(ids) != self.config.data.test:
            raise KaggleSaltError(f"{path} is damaged ({len(ids)} of {self.config.data.test} "
                                  "ids): rerun the run's `kagglesalt cv` command, which writes "
                                  "it again and keeps the finished folds")
        return ids

    def oof(self) -> np.ndarray:
        """uint8 (N, 101, 101) out-of-fold levels, memory-mapped."""
        return _load_levels(self.path / "oof.npy")

    def require_test(self) -> np.ndarray:
        """The test levels of a run that must have them (an ensemble's member, a source of
        pseudo-labels)."""
        levels = self.test()
        if levels is None:
            raise KaggleSaltError(f"run {self.name} has no test predictions (its data folder "
                                  "had no test images): train it on the competition's data")
        return levels

    def test(self) -> np.ndarray | None:
        """uint8 test levels, memory-mapped; None for a run of data without test images."""
        path = self.path / "test.npy"
        if path.exists():
            return _load_levels(path)
        if self.config.data.test:
            raise KaggleSaltError(f"{path} is missing: rerun the run's `kagglesalt cv` "
                                  "command, which makes it again from the finished folds")
        return None

    # Folds

    def fold_dir(self, k: int) -> Path:
        return self.path / f"fold_{k}"

    def fold_summary(self, k: int) -> FoldSummary | None:
        """A finished fold's summary (score, threshold, epochs, ...), None if unfinished."""
        path = self.fold_dir(k) / "done.json"
        if not path.exists():
            return None
        try:
            return FoldSummary.from_json(json.loads(path.read_text()))
        except (ValueError, TypeError, AttributeError):
            raise KaggleSaltError(f"{path} is damaged: rerun the run's `kagglesalt cv` "
                                  "command to train the fold again") from None

    def finished_fold(self, k: int) -> FoldSummary:
        """The summary of fold k, which must be finished."""
        summary = self.fold_summary(k)
        if summary is None:
            raise KaggleSaltError(f"fold {k + 1} of run {self.name} is not finished: rerun "
                                  "its `kagglesalt cv` command to finish it")
        return summary

    def fold_problem(self, k: int) -> str | None:
        """What is wrong with the files of finished fold k, in words; None when every file
        its done.json counts is there and whole (the model files, the arrays' shapes)."""
        try:
            summary = self.finished_fold(k)
        except KaggleSaltError as e:
            return str(e).split(":")[0]
        models = self.fold_models(k)
        if len(models) != summary.models:
            return f"{self.fold_dir(k)} holds {len(models)} of its {summary.models} model files"
        for model in models:
            if not _whole_zip(model):
                return f"{model} is damaged"
        arrays = [("oof.npy", summary.valid_images)]
        if self.config.data.test:  # config.json's count: test_ids.csv is written anew by cv
            arrays.append(("test.npy", self.config.data.test))
        for name, count in arrays:
            path = self.fold_dir(k) / name
            try:
                shape = _load_levels(path).shape
            except KaggleSaltError as e:
                return str(e).split(":")[0]
            if count and shape != (count, SIZE, SIZE):
                return f"{path} holds {shape[0]} images, not {count}"
        return None

    def fold_models(self, k: int) -> list[Path]:
        """The .keras models whose mean predicts fold k: its best epoch, or its snapshots."""
        return sorted(self.fold_dir(k).glob("model_*.keras"),
                      key=lambda p: int(p.stem.split("_")[1]))

    def fold_oof(self, k: int) -> np.ndarray:
        return np.asarray(_load_levels(self.fold_dir(k) / "oof.npy"))

    def fold_test(self, k: int) -> np.ndarray:
        return _load_levels(self.fold_dir(k) / "test.npy")

    def histories(self) -> list[pd.DataFrame]:
        """Each trained fold's validation history, fold by fold."""
        paths = sorted(self.path.glob("fold_*/history.csv"),
                       key=lambda p: int(p.parent.name.split("_")[1]))
        # A fold's history is its own (cv cannot write it again without training it anew).
        fix = "its fold's learning curves cannot be drawn; the fold's models and scores are " \
            "whole"
        return [_read_table(p, partial(pd.read_csv, p), ["epoch", "loss"], fix)
                for p in paths]

    # Writing (kagglesalt cv)

    def start(self, config: RunConfig, ids: np.ndarray, assignment: np.ndarray,
              test_ids: np.ndarray) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / "config.json", config.to_json())
        folds.write_folds(self.path / "folds.csv", ids, assignment)
        if len(test_ids):
            with atomic_open(self.path / "test_ids.csv", "w", newline="") as f:
                pd.DataFrame({"id": test_ids}).to_csv(f, index=False)

    def unfinish(self) -> None:
        """The run is being trained again (a fold was damaged): it reads as unfinished until
        `finish` writes its scores anew."""
        (self.path / "scores.json").unlink(missing_ok=True)

    def clear_fold(self, k: int) -> None:
        """Remove what an unfinished fold left (a fold is written whole or not at all),
        but its checkpoint, from which it goes on."""
        folder = self.fold_dir(k)
        for path in folder.iterdir() if folder.is_dir() else []:
            if path.name not in (CHECKPOINT, DAMAGED_CHECKPOINT):
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    def has_checkpoints(self) -> bool:
        return any(self.path.glob(f"fold_*/{CHECKPOINT}"))

    def save_fold_state(self, k: int, arrays: dict[str, np.ndarray], key: str) -> None:
        """Keep an unfinished fold's training state (`results.FoldState.pack()`), marked with
        `key` (what it was trained with), replacing the last one whole."""
        self.fold_dir(k).mkdir(parents=True, exist_ok=True)
        with atomic_open(self.fold_dir(k) / CHECKPOINT, "wb") as f:
            np.savez(f, **{"key": np.array(key), **arrays})  # type: ignore[arg-type]

    def fold_state(self, k: int, key: str) -> FoldState | None:
        """The kept state of unfinished fold k if it was trained with `key`; None if there
        is none or it is of other settings. UnusableState when it does not load."""
        path = self.fold_dir(k) / CHECKPOINT
        if not path.exists():
            return None
        try:
            with np.load(path) as stored:
                if "key" in stored.files and str(stored["key"]) != key:
                    return None
                arrays = {name: stored[name] for name in stored.files if name != "key"}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise UnusableState(f"{type(e).__name__}: {e}") from None
        return FoldState.unpack(arrays)

    def set_aside_checkpoint(self, k: int) -> Path:
        """Move fold k's checkpoint aside as `checkpoint.damaged.npz` (the fold starts
        over); returns where it went."""
        aside = self.fold_dir(k) / DAMAGED_CHECKPOINT
        os.replace(self.fold_dir(k) / CHECKPOINT, aside)
        return aside

    def write_fold(self, result: FoldResult) -> FoldSummary:
        """Store a trained fold; done.json, written last, marks it finished."""
        folder = self.fold_dir(result.fold)
        folder.mkdir(parents=True, exist_ok=True)
        for i, model in enumerate(result.models, start=1):
            write_bytes(folder / f"model_{i}.keras", model)
        with atomic_open(folder / "history.csv", "w", newline="") as f:
            result.history.to_csv(f, index=False)
        save_npy(folder / "oof.npy", result.oof)
        if result.test is not None:
            save_npy(folder / "test.npy", result.test)
        summary = FoldSummary.of(result)
        write_json(folder / "done.json", dataclasses.asdict(summary))
        self.drop_checkpoint(result.fold)  # the fold is whole: nothing to go on from
        return summary

    def drop_checkpoint(self, k: int) -> None:
        (self.fold_dir(k) / CHECKPOINT).unlink(missing_ok=True)

    def finish(self, oof: np.ndarray, test: np.ndarray | None, scores: RunScores) -> None:
        save_npy(self.path / "oof.npy", oof)
        if test is not None:
            save_npy(self.path / "test.npy", test)
        write_json(self.path / "scores.json", scores.to_json())


REWRITTEN_BY_CV = "rerun the run's `kagglesalt cv` command, which writes it again and " \
    "keeps the finished folds"


def _read_table(path: Path, read: Callable[[], pd.DataFrame], columns: list[str],
                fix: str = REWRITTEN_BY_CV) -> pd.DataFrame:
    """A run's CSV record read by `read`; missing or damaged (cut, binary, columns
    missing, values of the wrong type) is one line ending in `fix`."""
    try:
        table = read()
    except FileNotFoundError:
        raise KaggleSaltError(f"{path} is missing: {fix}") from None
    except (ValueError, TypeError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as e:
        raise KaggleSaltError(f"{path} is damaged ({type(e).__name__}): {fix}") from None
    missing = [c for c in columns if c not in table]
    if missing:
        raise KaggleSaltError(f"{path} is damaged (no {missing[0]} column): {fix}")
    return table


def _load_levels(path: Path) -> np.ndarray:
    """A stored uint8 array, memory-mapped; a missing or damaged one is one line."""
    try:
        return np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise KaggleSaltError(f"{path} is missing: rerun the run's `kagglesalt cv` "
                              "command to train again what lacks it") from None
    except (OSError, ValueError, EOFError):
        raise KaggleSaltError(f"{path} is damaged (cut short?): rerun the run's `kagglesalt "
                              "cv` command to train again what it belongs to") from None


def _whole_zip(path: Path) -> bool:
    """A .keras file is a zip: whole when every member's checksum holds."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def open_run(runs_dir: str | os.PathLike, name: str) -> Run:
    """The run called `name` in `runs_dir` ("runs/NAME" reads as NAME). A name is one
    folder name (`check_name`), checked before the disk is touched, so no command reaches
    a folder outside `runs_dir`."""
    from kagglesalt.workspace import check_name, strip_kind

    kind, bare = strip_kind(str(name))
    if kind == "ensemble":
        raise KaggleSaltError(f"{name} names an ensemble, not a run: `kagglesalt runs` "
                              "lists the runs")
    path = Path(runs_dir) / check_name(bare, "run")
    if not Run(path).started:
        raise KaggleSaltError(f"no run '{bare}' in {runs_dir}: `kagglesalt runs` lists them")
    return Run(path)


def all_runs(runs_dir: str | os.PathLike) -> list[Run]:
    """Every run, finished or not, newest first."""
    root = Path(runs_dir)
    found = [run for run in map(Run, root.iterdir()) if run.started] \
        if root.is_dir() else []
    return sorted(found, key=lambda r: (r.created(), r.name), reverse=True)


def differences(members: list[Run]) -> dict[str, list[Any]]:
    """The settings (and model, folds, data) in which runs differ: key -> value per run."""
    def flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in config.items():
            if isinstance(value, dict) and value:
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    flats = [flat({"model": r.config.model, "folds": r.config.folds,
                   "settings": r.config.settings, "data": r.config.data.fingerprint,
                   "pseudo": (r.config.pseudo or {}).get("source", "")})
             for r in members]
    keys = sorted(set().union(*flats))
    return {k: [f.get(k, "") for f in flats] for k in keys
            if len({json.dumps(f.get(k, ""), sort_keys=True) for f in flats}) > 1}


def finished_runs(runs_dir: str | os.PathLike) -> list[Run]:
    """Finished runs, oldest first."""
    root = Path(runs_dir)
    runs = [run for run in map(Run, root.iterdir()) if run.finished] \
        if root.is_dir() else []
    return sorted(runs, key=Run.finished_at)


def latest(runs_dir: str | os.PathLike) -> Run:
    runs = finished_runs(runs_dir)
    if not runs:
        raise KaggleSaltError(f"no finished run in {runs_dir}: train one with `kagglesalt cv`")
    return runs[-1]


def references(name: str, submissions_dir: str | os.PathLike) -> list[str]:
    """The submissions made with run `name`: ensemble records listing it as a member, and
    ledger rows whose source names it."""
    from kagglesalt.workspace import submissions

    found = []
    for path in submissions.ensemble_records(submissions_dir):
        try:
            record = submissions.read_ensemble(path)
        except KaggleSaltError:  # a damaged record names nothing
            continue
        if record is not None and name in record.weights:
            found.append(path.with_suffix(".csv").name)
    try:
        table = submissions.Ledger(Path(submissions_dir)).read()
    except KaggleSaltError:
        return found
    for file, source in zip(table["file"], table["source"], strict=True):
        members = [part.rsplit(":", 1)[0] for part in str(source).split(" + ") if part]
        if name in members and file not in found:
            found.append(file)
    return found


def _refuse_if_referenced(name: str, submissions_dir, force: bool, doing: str) -> None:
    used = references(name, submissions_dir)
    if used and not force:
        raise KaggleSaltError(f"run {name} made {', '.join(used)}: {doing} it would leave "
                              "their records naming a run that is not there; "
                              f"{option('force', True)} does it anyway")


def remove(runs_dir: str | os.PathLike, name: str, submissions_dir: str | os.PathLike,
           force: bool = False) -> Path:
    """Delete run `name` (not while it trains; not one a submission was made with, unless
    `force`)."""
    from kagglesalt.workspace import locks

    run = open_run(runs_dir, name)
    _refuse_if_referenced(run.name, submissions_dir, force, "deleting")
    with locks.holding(run.path, f"run {run.name}"):
        trash = run.path.with_name(f".{run.name}{DELETED}")
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(run.path, trash)  # gone at once for every reader, then deleted
    for left in Path(runs_dir).glob(f".*{DELETED}"):  # this one, and any a kill left
        shutil.rmtree(left, ignore_errors=True)
    return run.path


def rename(runs_dir: str | os.PathLike, old: str, new: str,
           submissions_dir: str | os.PathLike, force: bool = False) -> Run:
    """Rename run `old` to `new` (its config.json says the new name)."""
    from kagglesalt.workspace import check_name, locks

    check_name(new, "run")
    run = open_run(runs_dir, old)
    target = Run(run.path.with_name(new))
    if target.path.exists():
        raise KaggleSaltError(f"run {new} exists: choose another name")
    _refuse_if_referenced(run.name, submissions_dir, force, "renaming")
    with locks.holding(run.path, f"run {run.name}"):
        write_json(run.path / "config.json",
                   dataclasses.replace(run.config, name=new).to_json())
        os.replace(run.path, target.path)
    return target
