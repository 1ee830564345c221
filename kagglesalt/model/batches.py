"""The training batches of a fold: shuffled and augmented from the native 101x101 arrays
by worker threads, reproducibly."""

from __future__ import annotations

import os

import keras
import numpy as np

from kagglesalt.model import inputs
from kagglesalt.model.augment import Augment
from kagglesalt.model.settings import TrainSettings


def prefetch_workers(cpus: int | None = None) -> int:
    """Threads that augment the next batches while the device trains: 2 on a small CPU,
    where they share the cores with training; half the cores, up to 8, beside a GPU, where
    one thread (about 3,500 images/s at batch 128) would starve a fast device."""
    return max(2, min(8, (cpus or os.cpu_count() or 2) // 2))


class Batches(keras.utils.PyDataset):
    """Shuffled, augmented training batches, made from the native 101x101 arrays.

    Every batch is full (the few images left over change each epoch with the order), so one
    compiled step serves the whole run. A batch's randomness depends only on (seed, epoch,
    index), so batches prepared ahead by worker threads are the same as in order."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, settings: TrainSettings,
                 seed: int, has_salt_target: bool = False, workers: int | None = None):
        super().__init__(workers=workers or prefetch_workers(), use_multiprocessing=False)
        self.images, self.masks, self.s = images, masks, settings
        self.augment = Augment(**settings.augment)
        self.seed, self.epoch, self.has_salt_target = seed, 0, has_salt_target
        self.batch_size = min(settings.batch_size, len(images))
        self.order = self._order()

    def restore(self, epoch: int) -> None:
        """Go on from `epoch` epochs in: the same shuffles and augmentations as before."""
        self.epoch = epoch
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

