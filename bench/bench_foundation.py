"""Measure the foundation's speed targets: threshold search, RLE encoding, cached loading.

    python bench/bench_foundation.py [--data ../shared/tgs-salt] [--images 400]

The threshold search is timed against the classic notebook loop (np.histogram2d per image,
per threshold) on real masks when the data folder exists, else on synthetic ones.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from kagglesalt import data
from kagglesalt.competition import metric, rle
from kagglesalt.data import synth

THRESHOLDS = np.linspace(0.0, 0.98, 50)


def notebook_image_score(truth: np.ndarray, pred: np.ndarray) -> float:
    """The classic kernel's per-image metric: histograms, then a precision loop.

    Same structure and cost as the public notebook, with its empty-mask cases corrected so
    that the scores can be compared with ours.
    """
    bins, span = 2, [[0, 1], [0, 1]]
    truth, pred = truth.astype(np.uint8), pred.astype(np.uint8)
    intersection = np.histogram2d(truth.ravel(), pred.ravel(), bins=bins, range=span)[0]
    area_true = np.histogram(truth, bins=bins, range=(0, 1))[0]
    area_pred = np.histogram(pred, bins=bins, range=(0, 1))[0]
    union = np.expand_dims(area_true, -1) + np.expand_dims(area_pred, 0) - intersection
    intersection, union = intersection[1:, 1:], union[1:, 1:]
    if area_true[1] == 0 and area_pred[1] == 0:
        return 1.0
    union[union == 0] = 1e-9
    iou = intersection / union
    precisions = []
    for t in np.arange(0.5, 1.0, 0.05):
        matches = iou > t
        tp = np.sum(np.sum(matches, axis=1) == 1)
        fp = np.sum(np.sum(matches, axis=0) == 0) if area_pred[1] else 0
        fn = np.sum(np.sum(matches, axis=1) == 0) if area_true[1] else 0
        precisions.append(tp / (tp + fp + fn) if tp + fp + fn > 0 else 0)
    return float(np.mean(precisions))


def notebook_threshold_loop(truth: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    return np.array([np.mean([notebook_image_score(t, p > th)
                              for t, p in zip(truth, probabilities, strict=True)])
                     for th in THRESHOLDS])


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared" /
                        "tgs-salt")
    parser.add_argument("--images", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if (args.data / "train.csv").exists():
            train = data.load_train(args.data, cache_dir=Path(tmp) / "cache")
            source = str(args.data)
        else:
            train = data.load_train(synth.generate(Path(tmp) / "synth", args.images, 0))
            source = "synthetic"
        truth = train.masks[: args.images]
        rng = np.random.default_rng(0)
        blurred = np.stack([np.clip(np.roll(m, 2, axis=1) * 0.8 + 0.2 * rng.random(m.shape),
                                    0, 1) for m in truth]).astype(np.float32)
        levels = metric.to_levels(blurred)
        print(f"threshold search, {len(truth)} masks from {source}, {len(THRESHOLDS)} "
              "thresholds")
        t_loop, loop_curve = timed(lambda: notebook_threshold_loop(truth, blurred), repeat=1)
        t_float, fast = timed(lambda: metric.threshold_curve(truth, blurred, THRESHOLDS))
        t_level, _ = timed(lambda: metric.threshold_curve(truth, levels, THRESHOLDS))
        agree = np.abs(loop_curve - fast.scores).max()
        print(f"  notebook loop         {t_loop:8.3f} s")
        print(f"  float probabilities   {t_float:8.4f} s  {t_loop / t_float:7.0f}x faster, "
              f"max difference {agree:.1e}")
        print(f"  uint8 levels (runs)   {t_level:8.4f} s  {t_loop / t_level:7.0f}x faster")

        masks = np.concatenate([train.masks] * (18000 // len(train.masks) + 1))[:18000]
        t_enc, _ = timed(lambda: rle.encode(masks), repeat=3)
        print(f"RLE encode of 18,000 masks: {t_enc:.2f} s")

        big = synth.generate(Path(tmp) / "big", 4000, 18000)
        t_first, _ = timed(lambda: (data.load_train(big), data.load_test(big)), repeat=1)
        t_cached, _ = timed(lambda: (data.load_train(big), data.load_test(big)), repeat=3)
        print(f"load 4,000 train + 18,000 test: first {t_first:.1f} s, cached {t_cached:.2f} s")


if __name__ == "__main__":
    main()
