"""A run folder: what `kagglesalt cv` writes and what ensemble, report and score read.

    runs/<name>/config.json      everything needed to rerun it
    runs/<name>/folds.csv        id -> fold, in training-set order
    runs/<name>/test_ids.csv     the order of test.npy's images
    runs/<name>/fold_<k>/        model.keras, history.csv, oof.npy, test.npy, done.json
    runs/<name>/oof.npy          uint8 out-of-fold probability levels, every train id
    runs/<name>/test.npy         uint8 TTA, fold-averaged test probability levels
    runs/<name>/scores.json      per-fold and OOF competition score, threshold, curve
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kagglesalt import folds
from kagglesalt.errors import KaggleSaltError


@dataclass(frozen=True)
class Run:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def _json(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.path / name).read_text())
        except FileNotFoundError:
            raise KaggleSaltError(f"{self.path} has no {name}: is it a finished run? "
                                  "Rerun its `kagglesalt cv` command to finish it") from None

    @property
    def config(self) -> dict[str, Any]:
        return self._json("config.json")

    @property
    def scores(self) -> dict[str, Any]:
        return self._json("scores.json")

    @property
    def finished(self) -> bool:
        return (self.path / "scores.json").exists()

    def folds(self) -> pd.DataFrame:
        return folds.read_folds(self.path / "folds.csv")

    def test_ids(self) -> list[str]:
        path = self.path / "test_ids.csv"
        return list(pd.read_csv(path, dtype=str)["id"]) if path.exists() else []

    def oof(self) -> np.ndarray:
        """uint8 (N, 101, 101) out-of-fold levels, memory-mapped."""
        return np.load(self.path / "oof.npy", mmap_mode="r")

    def test(self) -> np.ndarray | None:
        path = self.path / "test.npy"
        return np.load(path, mmap_mode="r") if path.exists() else None


def open_run(runs_dir: str | os.PathLike, name: str | os.PathLike) -> Run:
    """A run by name under `runs_dir`, or by path."""
    path = Path(name)
    if not (path / "config.json").exists():
        path = Path(runs_dir) / name
    if not (path / "config.json").exists():
        raise KaggleSaltError(f"no run '{name}' in {runs_dir}: `ls {runs_dir}` shows the runs")
    return Run(path)


def finished_runs(runs_dir: str | os.PathLike) -> list[Run]:
    """Finished runs, oldest first."""
    root = Path(runs_dir)
    runs = [Run(p) for p in root.iterdir() if (p / "scores.json").exists()] \
        if root.is_dir() else []
    return sorted(runs, key=lambda r: (r.path / "scores.json").stat().st_mtime)


def latest(runs_dir: str | os.PathLike) -> Run:
    runs = finished_runs(runs_dir)
    if not runs:
        raise KaggleSaltError(f"no finished run in {runs_dir}: train one with `kagglesalt cv`")
    return runs[-1]
