"""Model predictions as probabilities on the 101x101 grid, with horizontal-flip TTA."""

from __future__ import annotations

import numpy as np

from kagglesalt import inputs, metric

CHUNK = 2048  # images per step: bounds memory on the 18,000 test images


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _chunk_probabilities(model, x: np.ndarray, input_mode: str, logits: bool, tta: bool,
                        batch_size: int) -> np.ndarray:
    views = [x, x[:, :, ::-1]] if tta else [x]
    total = np.zeros((len(x), inputs.SIZE, inputs.SIZE), np.float32)
    for k, view in enumerate(views):
        raw = np.asarray(model.predict(view, batch_size=batch_size, verbose=0))
        p = inputs.from_output(_sigmoid(raw) if logits else raw, input_mode)
        total += p[:, :, ::-1] if k == 1 else p
    return total / len(views)


def levels(model, images: np.ndarray, input_size: int, input_mode: str, logits: bool,
           tta: bool = True, batch_size: int = 64) -> np.ndarray:
    """uint8 (N, 101, 101) salt probability levels (see metric.to_levels); TTA averages with
    the prediction of the flipped image. Quantised chunk by chunk, so 18,000 test images
    never exist as float32 (734 MB)."""
    out = np.empty((len(images), inputs.SIZE, inputs.SIZE), np.uint8)
    for start in range(0, len(images), CHUNK):
        x = inputs.to_input(images[start:start + CHUNK], input_size, input_mode)
        out[start:start + len(x)] = metric.to_levels(
            _chunk_probabilities(model, x, input_mode, logits, tta, batch_size))
    return out
