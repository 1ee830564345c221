"""An independent, plain implementation of the competition metric for tests to compare with."""

import numpy as np

IOU_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def image_score(truth: np.ndarray, pred: np.ndarray) -> float:
    if not truth.any() and not pred.any():
        return 1.0
    if not truth.any() or not pred.any():
        return 0.0
    iou = (truth & pred).sum() / (truth | pred).sum()
    return float(np.mean([iou > t for t in IOU_THRESHOLDS]))


def score(truth, pred) -> float:
    return float(np.mean([image_score(t, p) for t, p in zip(truth, pred, strict=True)]))


def decode(rle: str, shape=(101, 101)) -> np.ndarray:
    """Kaggle RLE, decoded the slow obvious way."""
    flat = np.zeros(shape[0] * shape[1], bool)
    numbers = [int(v) for v in str(rle).split()]
    for start, length in zip(numbers[0::2], numbers[1::2], strict=True):
        flat[start - 1:start - 1 + length] = True
    return flat.reshape(shape[1], shape[0]).T
