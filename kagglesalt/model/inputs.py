"""How 101x101 images become model inputs of S x S, and how model outputs come back.

"resize" scales bilinearly (the notebook's way); "pad" reflects the borders out to S, which
keeps every pixel at its native scale, and crops the centre back.
"""

from __future__ import annotations

import cv2
import numpy as np

from kagglesalt.competition.rle import SIZE

MODES = ("resize", "pad")


def pads(size: int) -> tuple[int, int]:
    """Rows (and columns) of padding before and after the 101x101 image at size S."""
    total = size - SIZE
    return total // 2, total - total // 2


def loss_window(size: int, mode: str) -> tuple[int, int] | None:
    """(start, side) of the window of an S x S model map that is the 101x101 image: in pad
    mode the centre (losses are computed there, not on the mirrored border); None in resize
    mode, where the whole map is the image."""
    return (pads(size)[0], SIZE) if mode == "pad" else None


def to_input(images: np.ndarray, size: int, mode: str) -> np.ndarray:
    """uint8 or bool (N, 101, 101) to float32 (N, S, S, 1) in [0, 1]."""
    x = np.asarray(images, dtype=np.float32)
    if images.dtype == np.uint8:
        x = x / 255.0
    if mode == "pad":
        before, after = pads(size)
        x = np.pad(x, ((0, 0), (before, after), (before, after)), mode="reflect")
    elif mode == "resize":
        x = np.stack([cv2.resize(i, (size, size), interpolation=cv2.INTER_LINEAR) for i in x]) \
            if len(x) else np.zeros((0, size, size), np.float32)
    else:
        raise ValueError(f"input mode {mode!r} is not one of {MODES}")
    return x[..., None]


def from_output(maps: np.ndarray, mode: str) -> np.ndarray:
    """Model output maps (N, S, S, 1) or (N, S, S) back to (N, 101, 101) float32."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 4:
        maps = maps[..., 0]
    size = maps.shape[1]
    if mode == "pad":
        before, _ = pads(size)
        return np.ascontiguousarray(maps[:, before:before + SIZE, before:before + SIZE])
    return np.stack([cv2.resize(m, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
                     for m in maps]) if len(maps) else np.zeros((0, SIZE, SIZE), np.float32)
