import numpy as np
import pytest

from kagglesalt import inputs
from kagglesalt.augment import Augment


@pytest.mark.parametrize("mode", inputs.MODES)
def test_model_inputs_come_back_to_101(mode):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 101, 101)).astype(np.uint8)
    x = inputs.to_input(images, 128, mode)
    assert x.shape == (3, 128, 128, 1) and x.dtype == np.float32 and x.max() <= 1
    back = inputs.from_output(x, mode)
    assert back.shape == (3, 101, 101)
    tolerance = 1e-6 if mode == "pad" else 0.35
    assert np.abs(back - images / 255.0).mean() <= tolerance


def test_pad_mode_reflects_and_keeps_native_pixels():
    images = np.arange(101 * 101, dtype=np.float32).reshape(1, 101, 101) % 256
    x = inputs.to_input(images.astype(np.uint8), 128, "pad")[0, :, :, 0]
    assert np.allclose(x[13:114, 13:114], images[0].astype(np.uint8) / 255.0)
    assert np.allclose(x[12, 13:114], x[14, 13:114])  # mirrored about the first row


@pytest.mark.parametrize("augment", [Augment(), Augment(crop_scale=0.3),
                                     Augment(brightness=0.2, contrast=0.3)])
def test_augmentation_moves_image_and_mask_together(augment):
    rng = np.random.default_rng(1)
    masks = np.zeros((16, 32, 32, 1), np.float32)
    for m in masks:
        top, left = rng.integers(0, 20, 2)
        m[top:top + 10, left:left + 6] = 1
    images = 0.2 + 0.6 * masks  # the image shows exactly where the mask is
    out_images, out_masks = augment(images, masks, np.random.default_rng(2))
    assert out_images.shape == images.shape and set(np.unique(out_masks)) <= {0.0, 1.0}
    for image, mask in zip(out_images, out_masks, strict=True):
        level = (image.max() + image.min()) / 2
        agree = ((image > level) == (mask > 0.5)).mean()
        assert agree > 0.95  # bilinear image against nearest-neighbour mask at edges


def test_flips_happen_about_half_the_time():
    images = np.zeros((200, 4, 4, 1), np.float32)
    images[:, :, 0] = 1
    flipped, _ = Augment()(images, images.copy(), np.random.default_rng(0))
    share = (flipped[:, 0, -1, 0] == 1).mean()
    assert 0.35 < share < 0.65
