"""Kaggle's run-length encoding: column-major, 1-indexed `start length` pairs, '' for empty.

Encoding works on a whole stack of masks at once; decoding validates as it parses, so a
malformed string is refused with the reason instead of producing a wrong mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kagglesalt.errors import KaggleSaltError

SIZE = 101


class RLEError(KaggleSaltError, ValueError):
    """A run-length string that is not a valid Kaggle mask encoding."""


def encode(masks: np.ndarray) -> Any:
    """Encode a stack of masks (N, H, W) as a list of Kaggle RLE strings, or one mask (H, W)
    as one string (typed Any: its kind follows the array's dimensions)."""
    masks = np.asarray(masks)
    single = masks.ndim == 2
    if single:
        masks = masks[None]
    n, height, width = masks.shape
    size = height * width
    # Column-major order: transpose each mask so that a C-order walk goes down columns; a
    # zero pad between masks keeps runs from joining across them.
    padded = np.zeros((n, size + 1), dtype=bool)
    padded[:, 1:] = masks.transpose(0, 2, 1).reshape(n, size)
    flat = np.append(padded.ravel(), False)
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    # Edges alternate start, end: a run starts at a rise and ends before the next fall.
    rises, falls = edges[0::2], edges[1::2]
    owner = rises // (size + 1)
    starts = rises % (size + 1) + 1
    numbers = np.empty(2 * len(starts), dtype=np.int64)
    numbers[0::2] = starts
    numbers[1::2] = falls - rises
    words = list(map(str, numbers.tolist()))
    bounds = 2 * np.searchsorted(owner, np.arange(n + 1))
    out = [" ".join(words[bounds[i] : bounds[i + 1]]) for i in range(n)]
    return out[0] if single else out


def parse(rle: str, size: int = SIZE * SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Parse and validate an RLE string; return (starts, lengths) as 1-indexed int arrays."""
    if rle is None or (isinstance(rle, float) and np.isnan(rle)):
        rle = ""
    words = str(rle).split()
    if len(words) % 2:
        raise RLEError(f"odd number of values ({len(words)}): RLE needs 'start length' pairs")
    try:
        numbers = np.array([int(w) for w in words], dtype=np.int64)
    except ValueError:
        bad = next(w for w in words if not w.lstrip("-").isdigit())
        raise RLEError(f"'{bad}' is not an integer") from None
    starts, lengths = numbers[0::2], numbers[1::2]
    if len(starts):
        if starts.min() < 1:
            raise RLEError(f"start {starts.min()} is below 1 (RLE is 1-indexed)")
        if lengths.min() < 1:
            raise RLEError(f"run length {lengths.min()} is not positive")
        ends = starts + lengths - 1
        if ends.max() > size:
            raise RLEError(f"run {starts[ends.argmax()]} {lengths[ends.argmax()]} ends past "
                           f"pixel {size}")
        order = np.diff(starts)
        if (order <= 0).any():
            i = int(np.argmax(order <= 0))
            raise RLEError(f"starts are not ascending ({starts[i]} then {starts[i + 1]})")
        overlap = starts[1:] <= ends[:-1]
        if overlap.any():
            i = int(np.argmax(overlap))
            raise RLEError(f"runs overlap ({starts[i]} {lengths[i]} and "
                           f"{starts[i + 1]} {lengths[i + 1]})")
    return starts, lengths


def decode(rle: str, shape: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    """Decode one RLE string into a bool mask of `shape` (rows, columns)."""
    height, width = shape
    starts, lengths = parse(rle, height * width)
    flat = np.zeros(height * width + 1, dtype=np.int8)
    np.add.at(flat, starts - 1, 1)
    np.add.at(flat, starts - 1 + lengths, -1)
    column_major = np.cumsum(flat[:-1]).astype(bool)
    return column_major.reshape(width, height).T


def decode_many(rles: Sequence[str], shape: tuple[int, int] = (SIZE, SIZE),
                ids: Sequence[str] | None = None) -> np.ndarray:
    """Decode a sequence of RLE strings into (N, H, W) bool masks; errors name the id."""
    out = np.zeros((len(rles), *shape), dtype=bool)
    for i, rle in enumerate(rles):
        try:
            out[i] = decode(rle, shape)
        except RLEError as e:
            where = f"id {ids[i]}" if ids is not None else f"row {i + 1}"
            raise RLEError(f"malformed RLE for {where}: {e}") from None
    return out
