"""Stratified K-fold assignment by salt coverage: empty masks form their own class."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold

from kagglesalt.atomic import atomic_open
from kagglesalt.errors import KaggleSaltError, option


def coverage_class(coverage: np.ndarray, bins: int = 10) -> np.ndarray:
    """0 for an empty mask, else 1..bins by coverage (0, 0.1], (0.1, 0.2], ..."""
    coverage = np.asarray(coverage, dtype=np.float64)
    return np.where(coverage > 0, np.clip(np.ceil(coverage * bins), 1, bins), 0).astype(int)


def assign_folds(coverage: np.ndarray, n_folds: int, seed: int = 42) -> np.ndarray:
    """Fold index (0..n_folds-1) of each image, stratified by coverage class."""
    n = len(coverage)
    if n_folds < 2:
        raise KaggleSaltError(f"{option('folds', n_folds)}: K-fold needs at least 2 folds")
    if n < n_folds:
        raise KaggleSaltError(f"{n} training images cannot make {n_folds} folds: "
                              "use fewer folds or more images")
    classes = coverage_class(coverage)
    folds = np.empty(n, dtype=int)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    if np.bincount(classes).max() < n_folds:
        # No class is large enough to stratify (tiny data sets): plain shuffled K-fold.
        splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Rare coverage classes are spread over the folds as well as they can be.
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, valid) in enumerate(splitter.split(np.zeros(n), classes)):
            folds[valid] = k
    return folds


def write_folds(path: str | os.PathLike, ids: np.ndarray, folds: np.ndarray) -> None:
    with atomic_open(path, "w", newline="") as f:
        pd.DataFrame({"id": ids, "fold": folds}).to_csv(f, index=False)


def read_folds(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"id": str, "fold": int})
