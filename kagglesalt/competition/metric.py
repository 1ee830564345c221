"""The competition metric, and a threshold search that scores every threshold in one pass.

Per image: both masks empty scores 1; exactly one empty scores 0; otherwise the score is the
fraction of the IoU thresholds 0.50, 0.55, ..., 0.95 that the IoU exceeds. The competition
score is the mean over images. Comparisons are done in integers (100 * intersection against
t * union) so that an IoU of exactly 0.55 does not pass 0.55 through rounding.

Probabilities are uint8 levels 0..255 (p * 255, see `to_levels`): a pixel is salt at
threshold t when level > 255 * t. Per-image histograms of the levels give the intersection
and union at every threshold at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS_PERCENT = np.arange(50, 100, 5)
LEVELS = 256


def to_levels(probabilities: np.ndarray) -> np.ndarray:
    """Quantise probabilities in [0, 1] to uint8 levels; uint8 input is returned as it is."""
    probabilities = np.asarray(probabilities)
    if probabilities.dtype == np.uint8:
        return probabilities
    return np.clip(np.rint(probabilities * 255.0), 0, 255).astype(np.uint8)


def binarize(levels: np.ndarray, threshold: float) -> np.ndarray:
    """Salt where the probability level exceeds the threshold."""
    return to_levels(levels) > 255.0 * threshold


def mean_levels(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The rounded mean of equal-shaped uint8 level arrays (the folds' test predictions),
    in integers: float copies of 18,000 maps would cost 734 MB each."""
    total = np.zeros(arrays[0].shape, np.uint16)
    for array in arrays:
        total += array
    total += len(arrays) // 2
    total //= len(arrays)
    return total.astype(np.uint8)


def combine(arrays: Sequence[np.ndarray], weights: Sequence[float],
            index: slice = slice(None)) -> np.ndarray:
    """Weighted mean of uint8 probability levels (weights summing to 1), as uint8 levels."""
    out = np.zeros(arrays[0][index].shape, np.float32)
    for array, weight in zip(arrays, weights, strict=True):
        if weight:
            out += np.float32(weight) * array[index]
    np.rint(out, out=out)
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def _scores_from_counts(intersection: np.ndarray, union: np.ndarray,
                        truth_area: np.ndarray, pred_area: np.ndarray) -> np.ndarray:
    """Per-image scores from integer counts; all arrays broadcast together."""
    passed = (100 * intersection[..., None] > IOU_THRESHOLDS_PERCENT * union[..., None])
    scores = passed.mean(axis=-1)
    both_empty = (truth_area == 0) & (pred_area == 0)
    return np.where(both_empty, 1.0, scores)


def image_scores(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Competition score of each image, for bool masks of shape (N, H, W)."""
    truth = np.asarray(truth, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    n = truth.shape[0]
    truth_area = truth.reshape(n, -1).sum(axis=1)
    pred_area = pred.reshape(n, -1).sum(axis=1)
    intersection = (truth & pred).reshape(n, -1).sum(axis=1)
    union = truth_area + pred_area - intersection
    return _scores_from_counts(intersection, union, truth_area, pred_area)


def score(truth: np.ndarray, pred: np.ndarray) -> float:
    """The competition score: the mean of `image_scores`."""
    return float(image_scores(truth, pred).mean())


def empty_score(truth: np.ndarray) -> float:
    """The score of a submission of empty masks on these images (the share of empty
    ones): a model below it has not learned to find salt yet."""
    return score(truth, np.zeros_like(truth, dtype=bool))


def below_empty(oof_score: float, empty: float | None) -> str | None:
    """A warning when an out-of-fold score does not beat empty masks; None otherwise."""
    if empty is None or oof_score > empty:
        return None
    return (f"the OOF score {oof_score:.4f} is not above the {empty:.4f} that empty masks "
            "score on these images: the models have not learned to find salt yet, and a "
            "submission of them scores no better than empty masks; train longer (a larger "
            "time budget, or fewer folds)")


@dataclass(frozen=True)
class ThresholdSearch:
    """The best threshold and the score at every candidate threshold."""

    threshold: float
    score: float
    thresholds: np.ndarray
    scores: np.ndarray


def _bin_histograms(truth: np.ndarray, bins: np.ndarray, n_bins: int,
                    chunk: int = 512) -> tuple[np.ndarray, ...]:
    """Per image, how many salt pixels and how many pixels fall in bin b or above.

    Images are counted `chunk` at a time, which bounds the memory of the flat index.
    """
    n = truth.shape[0]
    everything = np.zeros((n, n_bins), np.int64)
    salt = np.zeros((n, n_bins), np.int64)
    for start in range(0, n, chunk):
        part = slice(start, min(n, start + chunk))
        m = part.stop - part.start
        offsets = (np.arange(m, dtype=np.int32) * n_bins)[:, None]
        index = (bins[part].reshape(m, -1).astype(np.int32) + offsets).ravel()
        everything[part] = np.bincount(index, minlength=m * n_bins).reshape(m, n_bins)
        salt[part] = np.bincount(index[np.asarray(truth[part], dtype=bool).ravel()],
                                 minlength=m * n_bins).reshape(m, n_bins)
    zeros = np.zeros((n, 1), np.int64)
    above_salt = np.concatenate([np.cumsum(salt[:, ::-1], axis=1)[:, ::-1], zeros], axis=1)
    above_all = np.concatenate([np.cumsum(everything[:, ::-1], axis=1)[:, ::-1], zeros], axis=1)
    return above_salt, above_all


def _count_below(order: np.ndarray, values: np.ndarray, cells: int = 1 << 16) -> np.ndarray:
    """For each value, how many of the sorted thresholds lie strictly below it.

    The same as np.searchsorted(order, values, "left"), several times faster: values are
    put in one of `cells` equal cells of [0, 1], a table gives the answer for every cell
    that holds no threshold, and only values in the few cells that do are searched.
    """
    scaled = np.clip(values * cells, 0, cells - 1).astype(np.int32)
    edges = np.arange(cells) / cells
    table = np.searchsorted(order, edges, side="left").astype(np.int32)
    has_threshold = np.zeros(cells, bool)
    inside = (order >= 0) & (order < 1)
    has_threshold[(order[inside] * cells).astype(np.int64)] = True
    counts = table[scaled]
    # Values outside [0, 1) and values sharing a cell with a threshold are searched exactly.
    exact = has_threshold[scaled] | (values < 0) | (values >= 1)
    if exact.any():
        counts[exact] = np.searchsorted(order, values[exact], side="left")
    return counts


def threshold_curve(truth: np.ndarray, probabilities: np.ndarray,
                    thresholds: np.ndarray | None = None) -> ThresholdSearch:
    """Score every candidate threshold on N probability maps at once.

    `probabilities` are uint8 levels (as stored by runs) or floats in [0, 1]; a pixel is salt
    when it exceeds the threshold, exactly as `binarize` (levels) or `p > t` (floats) decide.
    `thresholds` default to 0.01 steps.
    """
    if thresholds is None:
        thresholds = np.round(np.arange(0.01, 1.0, 0.01), 2)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    probabilities = np.asarray(probabilities)
    if probabilities.dtype == np.uint8:
        # level > 255 t  <=>  level >= floor(255 t) + 1
        bins, n_bins = probabilities, LEVELS
        first = np.clip(np.floor(255.0 * thresholds).astype(np.int64) + 1, 0, LEVELS)
    else:
        # bin = how many thresholds lie below p, so p > t_k  <=>  bin >= rank(t_k) + 1
        order = np.sort(thresholds)
        bins = _count_below(order, probabilities)
        n_bins = len(order) + 1
        first = np.searchsorted(order, thresholds, side="left") + 1
    above_salt, above_all = _bin_histograms(truth, bins, n_bins)
    intersection = above_salt[:, first]
    pred_area = above_all[:, first]
    truth_area = above_salt[:, :1]
    union = truth_area + pred_area - intersection
    per_image = _scores_from_counts(intersection, union, truth_area, pred_area)
    curve = per_image.mean(axis=0)
    best = int(np.argmax(curve))
    return ThresholdSearch(float(thresholds[best]), float(curve[best]), thresholds, curve)
