"""On-the-fly augmentation, applied identically to an image and its mask.

Works on model inputs (N, S, S, 1) float32 in [0, 1]. Horizontal flips are always on (salt
has no left or right); random crop-and-rescale and brightness/contrast are options. Vertical
flips are not offered: seismic sections have a direction, depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Augment:
    hflip: bool = True
    crop_scale: float = 0.0  # up to this fraction of the side is cropped away, then rescaled
    brightness: float = 0.0  # +- shift of the mean, in [0, 1] units
    contrast: float = 0.0  # +- relative change of contrast

    def __call__(self, images: np.ndarray, masks: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        images, masks = images.copy(), masks.copy()
        n = len(images)
        if self.hflip:
            flip = rng.random(n) < 0.5
            images[flip] = images[flip, :, ::-1]
            masks[flip] = masks[flip, :, ::-1]
        if self.crop_scale > 0:
            for i in np.flatnonzero(rng.random(n) < 0.5):
                images[i], masks[i] = _crop_rescale(images[i], masks[i], self.crop_scale, rng)
        if self.brightness > 0 or self.contrast > 0:
            mean = images.mean(axis=(1, 2, 3), keepdims=True)
            gain = 1 + rng.uniform(-self.contrast, self.contrast, (n, 1, 1, 1))
            shift = rng.uniform(-self.brightness, self.brightness, (n, 1, 1, 1))
            images = np.clip((images - mean) * gain + mean + shift, 0, 1).astype(np.float32)
        return images, masks


def _crop_rescale(image: np.ndarray, mask: np.ndarray, limit: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    size = image.shape[0]
    side = int(round(size * (1 - rng.uniform(0, limit))))
    top, left = rng.integers(0, size - side + 1, 2)
    window = (slice(top, top + side), slice(left, left + side))
    image = cv2.resize(image[window][..., 0], (size, size), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask[window][..., 0], (size, size), interpolation=cv2.INTER_NEAREST)
    return image[..., None], mask[..., None]
