"""A synthetic seismic data set in the exact Kaggle layout: the embedded default.

Each image is a section of layered reflectors, folded and tilted, with noise. A salt body is
a smooth random region whose interior is chaotic and low in amplitude and whose boundary is a
bright reflector, as salt looks in real sections. About 39% of the masks are empty, and the
coverage of the others spreads from a few pixels to the whole image like the real set's.
The test masks, which Kaggle keeps hidden, are written to `test_truth.csv` beside the layout.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kagglesalt import data
from kagglesalt.atomic import write_json
from kagglesalt.competition import rle
from kagglesalt.errors import KaggleSaltError, option

SIZE = rle.SIZE
EMPTY_FRACTION = 0.39
TEST_TRUTH = "test_truth.csv"


def _smooth_noise(rng: np.random.Generator, sigma: float, shape=(SIZE, SIZE)) -> np.ndarray:
    field = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return field / (field.std() + 1e-6)


def _coverage_target(rng: np.random.Generator) -> float:
    """0 with probability 0.39; else small bodies more often than large, some full images."""
    u = rng.random()
    if u < EMPTY_FRACTION:
        return 0.0
    if u < 0.45:
        return 1.0
    return float(np.clip(rng.beta(0.8, 1.4), 0.003, 0.99))


def salt_mask(rng: np.random.Generator, coverage: float) -> np.ndarray:
    """A smooth random body covering about `coverage` of the image (bool, 101x101)."""
    if coverage <= 0:
        return np.zeros((SIZE, SIZE), bool)
    if coverage >= 1:
        return np.ones((SIZE, SIZE), bool)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    angle = rng.uniform(0, 2 * np.pi)
    # A tilted trend makes bodies reach in from an edge, as salt domes often do.
    field = _smooth_noise(rng, rng.uniform(8, 20)) + \
        rng.uniform(0, 3) * (np.cos(angle) * xx + np.sin(angle) * yy)
    level = np.quantile(field, 1 - coverage)
    return field > level


def seismic_image(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """A uint8 seismic section with salt where `mask` is true."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    # Layered reflectors: a reflectivity series in depth, sampled along folded, dipping horizons.
    reflectivity = np.convolve(rng.standard_normal(4 * SIZE),
                               np.hanning(rng.integers(3, 8)), mode="same").astype(np.float32)
    fold = sum(rng.uniform(0, 6) * np.sin(2 * np.pi * xx / rng.uniform(30, 200) +
                                          rng.uniform(0, 2 * np.pi)) for _ in range(2))
    depth = yy + rng.uniform(-0.4, 0.4) * xx + fold + 1.5 * SIZE
    sediments = np.interp(depth.ravel(), np.arange(4 * SIZE), reflectivity).reshape(SIZE, SIZE)
    sediments /= sediments.std() + 1e-6
    signal = sediments
    if mask.any():
        chaotic = 0.3 * _smooth_noise(rng, 1.0)
        signal = np.where(mask, chaotic, sediments)
        m8 = mask.astype(np.uint8)
        kernel = np.ones((3, 3), np.uint8)
        rim = (cv2.dilate(m8, kernel) - cv2.erode(m8, kernel)).astype(np.float32)
        rim = cv2.GaussianBlur(rim, (0, 0), 0.8)
        signal = signal + rng.uniform(1.5, 3.0) * rng.choice([-1, 1]) * rim / (rim.max() + 1e-6)
    signal = signal + rng.uniform(0.1, 0.4) * rng.standard_normal(signal.shape)
    contrast = rng.uniform(15, 45)
    brightness = rng.uniform(100, 150)
    return np.clip(brightness + contrast * signal, 0, 255).astype(np.uint8)


def _hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    ids: set[str] = set()
    while len(ids) < n:
        ids.update(f"{v:010x}" for v in rng.integers(0, 16**10, n - len(ids)))
    return sorted(ids, key=lambda _: rng.random())


def _write_png(path: Path, array: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise KaggleSaltError(f"could not encode {path}")
    buf.tofile(path)


def check_target(out_dir: Path, n_train: int, n_test: int, force: bool = False) -> None:
    """Refuse, before any work, a folder that holds a data set (unless `force`) and sizes
    that make no data set."""
    if (Path(out_dir) / "train.csv").exists() and not force:
        raise KaggleSaltError(f"{out_dir} already holds a data set: use "
                              f"{option('force', True)} to replace it, or choose another "
                              f"{option('data_dir')}")
    if n_train < 1 or n_test < 0:
        raise KaggleSaltError("synthetic data needs at least one training image")


def generate(out_dir: str | os.PathLike, n_train: int = 4000, n_test: int = 1000,
             seed: int = 0, force: bool = False,
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Write a synthetic data set in the Kaggle layout into `out_dir`; return it.

    The set is built in a sibling folder and moved in whole, so an interruption leaves no
    half layout. An existing data set is kept unless `force`.
    """
    out_dir = Path(out_dir)
    check_target(out_dir, n_train, n_test, force)
    rng = np.random.default_rng(seed)
    ids = _hex_ids(rng, n_train + n_test)
    train_ids, test_ids = ids[:n_train], ids[n_train:]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for sub in ("train/images", "train/masks", "test/images"):
            (staging / sub).mkdir(parents=True)
        rles, test_rles, depths = [], [], {}
        total = n_train + n_test
        for k, image_id in enumerate(ids):
            is_train = k < n_train
            mask = salt_mask(rng, _coverage_target(rng))
            image = seismic_image(rng, mask)
            split = "train" if is_train else "test"
            _write_png(staging / split / "images" / f"{image_id}.png",
                       cv2.merge([image, image, image]))
            if is_train:
                _write_png(staging / "train" / "masks" / f"{image_id}.png",
                           mask.astype(np.uint16) * 65535)
                rles.append(rle.encode(mask))
            else:
                test_rles.append(rle.encode(mask))
            depths[image_id] = int(rng.integers(51, 960))
            if progress and (k % 200 == 0 or k == total - 1):
                progress(k + 1, total)
        pd.DataFrame({"id": train_ids, "rle_mask": rles}).to_csv(staging / "train.csv",
                                                                 index=False)
        pd.DataFrame({"id": list(depths), "z": list(depths.values())}).sample(
            frac=1.0, random_state=seed).to_csv(staging / "depths.csv", index=False)
        pd.DataFrame({"id": test_ids, "rle_mask": ["1 1"] * len(test_ids)}).to_csv(
            staging / "sample_submission.csv", index=False)
        # Not part of Kaggle's layout: the hidden answers, so a synthetic submission can be
        # scored (`kagglesalt score SUBMISSION --truth data/test_truth.csv`).
        pd.DataFrame({"id": test_ids, "rle_mask": test_rles}).to_csv(
            staging / TEST_TRUTH, index=False)
        write_json(staging / data.SOURCE_MARKER, {"source": "synthetic", "seed": seed,
                                                  "train": n_train, "test": n_test})
        data.replace_folder(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir
