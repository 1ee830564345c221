"""On-the-fly augmentation, applied identically to an image and its mask.

Works on the native grid, (N, 101, 101) float32 images in [0, 1] and 0/1 masks, before the
images are padded or resized to the model's input: a flip of a padded input would move the
image by a pixel against the crop that comes back (13 pixels of padding before, 14 after).
Horizontal flips are always on (salt has no left or right); random crop-and-rescale,
translation and brightness/contrast are options. Vertical flips are not offered: seismic
sections have a direction, depth.
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
    # Up to this fraction of the side, each way, the image and mask move by whole pixels
    # with their borders reflected: what shifting the image inside a larger pad does (the
    # 4th place moved it by up to 13 of 101 pixels inside 128), in any input mode.
    shift: float = 0.0

    def __call__(self, images: np.ndarray, masks: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """New float32 arrays; the inputs are left as they are."""
        images = np.array(images, dtype=np.float32)
        masks = np.array(masks, dtype=np.float32)
        n = len(images)
        if self.hflip:
            flip = rng.random(n) < 0.5
            images[flip] = images[flip, :, ::-1]
            masks[flip] = masks[flip, :, ::-1]
        if self.crop_scale > 0:
            for i in np.flatnonzero(rng.random(n) < 0.5):
                images[i], masks[i] = _crop_rescale(images[i], masks[i], self.crop_scale, rng)
        if self.shift > 0:
            most = int(round(self.shift * images.shape[1]))
            for k, (dy, dx) in enumerate(rng.integers(-most, most + 1, (n, 2)).tolist()):
                images[k], masks[k] = _shifted(images[k], dy, dx), _shifted(masks[k], dy, dx)
        if self.brightness > 0 or self.contrast > 0:
            mean = images.mean(axis=(1, 2), keepdims=True)
            gain = 1 + rng.uniform(-self.contrast, self.contrast, (n, 1, 1))
            shift = rng.uniform(-self.brightness, self.brightness, (n, 1, 1))
            images = np.clip((images - mean) * gain + mean + shift, 0, 1).astype(np.float32)
        return images, masks


def _crop_rescale(image: np.ndarray, mask: np.ndarray, limit: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random square window scaled back to full size. The mask is resampled exactly like
    the image (bilinear) and cut at one half, so its edge stays where the image's edge is;
    nearest-neighbour sampling would shift it by a fraction of a pixel."""
    size = image.shape[0]
    side = int(round(size * (1 - rng.uniform(0, limit))))
    top, left = rng.integers(0, size - side + 1, 2)
    window = (slice(top, top + side), slice(left, left + side))
    image = cv2.resize(image[window], (size, size), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask[window], (size, size), interpolation=cv2.INTER_LINEAR)
    return image, (mask > 0.5).astype(np.float32)


def _shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`image` moved down by dy and right by dx pixels, the border reflected in (as the
    pad mode's own border is), so no pixel is resampled."""
    size_y, size_x = image.shape
    py, px = abs(dy), abs(dx)
    padded = np.pad(image, ((py, py), (px, px)), mode="reflect")
    return padded[py - dy:py - dy + size_y, px - dx:px - dx + size_x]
