"""What a fold is given (`FoldJob`), what training it produces (`FoldResult`) and where an
unfinished fold stands (`FoldState`): Keras-free values; the workspace stores the last two
(`runs.Run.write_fold`, `runs.Run.save_fold_state`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FoldJob:
    """One fold's images: uint8 images and bool masks (N, 101, 101) to train on (any extra,
    pseudo-labelled ones after the real), the held-out ones it is scored on, the test
    images it predicts, and which fold of how many it is."""

    train_images: np.ndarray
    train_masks: np.ndarray
    val_images: np.ndarray
    val_masks: np.ndarray
    test_images: np.ndarray | None = None
    fold: int = 0
    folds: int = 1

    @classmethod
    def of(cls, images: np.ndarray, masks: np.ndarray, assignment: np.ndarray, fold: int,
           folds: int, test_images: np.ndarray | None = None,
           extra: tuple[np.ndarray, np.ndarray] | None = None) -> FoldJob:
        """Fold `fold` of a fold `assignment` of the training images, with `extra` images
        and masks that only train."""
        valid = assignment == fold
        train_images, train_masks = images[~valid], masks[~valid]
        if extra is not None and len(extra[0]):
            train_images = np.concatenate([train_images, extra[0]])
            train_masks = np.concatenate([train_masks, extra[1]])
        return cls(train_images, train_masks, images[valid], masks[valid], test_images, fold,
                   folds)


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


class UnusableState(ValueError):
    """A kept fold state that cannot be trained on: damaged, or not of this model."""


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
        """The state `pack` stored; UnusableState says what is wrong with damaged arrays."""
        try:
            meta = json.loads(str(arrays["meta"]))

            def listed(prefix: str) -> list[np.ndarray]:
                count = sum(1 for k in arrays if k.startswith(f"{prefix}/"))
                return [arrays[f"{prefix}/{i}"] for i in range(count)]

            state = cls(meta["stage"], meta["epoch"], meta["done"], meta["stages"],
                        meta["history"], meta["best_score"], meta["seconds"],
                        listed("weights"), listed("optimizer"),
                        listed("best") if meta["has_best"] else None,
                        [listed(f"snapshot{s}") for s in range(meta["snapshots"])])
        except KeyError as e:
            raise UnusableState(f"no entry {e}") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise UnusableState(f"{type(e).__name__}: {e}") from None
        state._check()
        return state

    def _check(self) -> None:
        counts = [("stage", self.stage), ("epoch", self.epoch), ("done", self.done)]
        for name, value in counts:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UnusableState(f"{name} is {value!r}, not a count")
        if not isinstance(self.stages, list) or not all(isinstance(s, dict)
                                                         for s in self.stages):
            raise UnusableState("its stages are not a list of stages")
        if not isinstance(self.history, list) or not all(isinstance(r, dict)
                                                          for r in self.history):
            raise UnusableState("its history is not a list of epochs")
        for name in ("best_score", "seconds"):
            if not isinstance(getattr(self, name), int | float):
                raise UnusableState(f"{name} is {getattr(self, name)!r}, not a number")
        if not self.weights:
            raise UnusableState("it holds no weights")

    def check_fits(self, shapes: list[tuple[int, ...]]) -> None:
        """UnusableState unless its weights, best and snapshot weights have `shapes` (the
        model's, in order)."""
        kept = [("weights", self.weights)] + ([("best", self.best)] if self.best else []) \
            + [(f"snapshot {i + 1}", w) for i, w in enumerate(self.snapshots)]
        for name, weights in kept:
            if [tuple(np.shape(w)) for w in weights] != [tuple(s) for s in shapes]:
                raise UnusableState(f"its {name} are not this model's ({len(weights)} arrays "
                                    f"for {len(shapes)})")
