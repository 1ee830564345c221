"""Model predictions as probabilities on the 101x101 grid, with horizontal-flip TTA.

Several models (the snapshots of a fold, or the folds of a run) are averaged as
probabilities, each with its TTA views.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kagglesalt import inputs, metric

CHUNK = 2048  # images per step: bounds memory on the 18,000 test images


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def probabilities(models: Sequence, images: np.ndarray, input_size: int, input_mode: str,
                  logits: bool, tta: bool = True, batch_size: int = 64) -> np.ndarray:
    """float32 (N, 101, 101) mean salt probability of `models` for a few uint8 images.

    The flipped view is the flipped 101x101 image brought to the model's size, and its
    prediction is cropped back before it is flipped back: flipping the padded input instead
    would land one column off, since the padding is 13 pixels before and 14 after."""
    views = [images, images[:, :, ::-1]] if tta else [images]
    total = np.zeros((len(images), inputs.SIZE, inputs.SIZE), np.float32)
    for k, view in enumerate(views):
        x = inputs.to_input(np.ascontiguousarray(view), input_size, input_mode)
        for model in models:
            raw = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
            p = inputs.from_output(_sigmoid(raw) if logits else raw, input_mode)
            total += p[:, :, ::-1] if k == 1 else p
    return total / (len(views) * len(models))


def levels(models: Sequence, images: np.ndarray, input_size: int, input_mode: str,
           logits: bool, tta: bool = True, batch_size: int = 64) -> np.ndarray:
    """uint8 (N, 101, 101) salt probability levels (see metric.to_levels) of the mean of
    `models`, with TTA. Quantised chunk by chunk, so 18,000 test images never exist as
    float32 (734 MB)."""
    out = np.empty((len(images), inputs.SIZE, inputs.SIZE), np.uint8)
    for start in range(0, len(images), CHUNK):
        chunk = images[start:start + CHUNK]
        out[start:start + len(chunk)] = metric.to_levels(probabilities(
            models, chunk, input_size, input_mode, logits, tta, batch_size))
    return out
