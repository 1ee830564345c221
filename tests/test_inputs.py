import numpy as np
import pytest

from kagglesalt.model import inputs
from kagglesalt.model.augment import Augment


@pytest.mark.parametrize("mode", inputs.MODES)
def test_model_inputs_come_back_to_101(mode):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 101, 101)).astype(np.uint8)
    x = inputs.to_input(images, 128, mode)
    assert x.shape == (3, 128, 128, 1) and x.dtype == np.float32 and x.max() <= 1
    back = inputs.from_output(x, mode)
    assert back.shape == (3, 101, 101)
    # pad mode gives the pixels back exactly; resizing there and back blurs noise a little
    limit = 1e-6 if mode == "pad" else 0.5
    assert np.abs(back - images / 255.0).max() <= limit
    assert np.abs(back - images / 255.0).mean() <= (1e-6 if mode == "pad" else 0.15)


def test_a_smooth_image_survives_the_resize_round_trip():
    rows, cols = np.meshgrid(np.linspace(0, 3, 101), np.linspace(0, 2, 101), indexing="ij")
    image = (0.5 + 0.4 * np.sin(rows) * np.cos(cols))[None].astype(np.float32)
    back = inputs.from_output(inputs.to_input(image, 128, "resize"), "resize")
    assert np.abs(back - image).max() < 0.01
    assert np.abs(back[:, :, ::-1] - image).max() > 0.1  # a mirrored image would not pass


def test_pad_mode_reflects_and_keeps_native_pixels():
    images = np.arange(101 * 101, dtype=np.float32).reshape(1, 101, 101) % 256
    x = inputs.to_input(images.astype(np.uint8), 128, "pad")[0, :, :, 0]
    assert np.allclose(x[13:114, 13:114], images[0].astype(np.uint8) / 255.0)
    assert np.allclose(x[12, 13:114], x[14, 13:114])  # mirrored about the first row


def blob_masks(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.float32)
    for m in masks:
        top, left = rng.integers(0, size - 12, 2)
        m[top:top + 12, left:left + 7] = 1
    return masks


@pytest.mark.parametrize("augment", [Augment(), Augment(crop_scale=0.3), Augment(shift=0.13),
                                     Augment(brightness=0.2, contrast=0.3)])
def test_augmentation_moves_image_and_mask_together(augment):
    masks = blob_masks(16, 40, 1)
    images = 0.2 + 0.6 * masks  # the image shows exactly where the mask is
    out_images, out_masks = augment(images, masks, np.random.default_rng(2))
    assert out_images.shape == images.shape and set(np.unique(out_masks)) <= {0.0, 1.0}
    assert (images == 0.2 + 0.6 * masks).all()  # the inputs are left as they were
    for image, mask in zip(out_images, out_masks, strict=True):
        level = (image.max() + image.min()) / 2
        assert ((image > level) == (mask > 0.5)).all()


def test_crop_scale_resamples_a_mask_exactly_like_its_image():
    masks = blob_masks(64, 101, 3)
    out_images, out_masks = Augment(hflip=False, crop_scale=0.3)(
        masks, masks, np.random.default_rng(4))
    changed = (out_masks != masks).reshape(64, -1).any(axis=1)
    assert changed.sum() > 16  # crops happened
    assert ((out_images > 0.5) == (out_masks > 0.5)).all()


def test_shift_moves_by_whole_pixels_within_its_limit():
    images = np.zeros((300, 101, 101), np.float32)
    images[:, 50, 50] = 1  # one bright pixel, far from the border
    moved, masks = Augment(hflip=False, shift=0.13)(images, images.copy(),
                                                    np.random.default_rng(1))
    assert (moved == masks).all() and set(np.unique(moved)) == {0.0, 1.0}  # nothing resampled
    image, flat = np.nonzero(moved.reshape(300, -1))
    assert (image == np.arange(300)).all()  # every image keeps its one pixel
    offsets = np.stack([flat // 101 - 50, flat % 101 - 50])
    assert np.abs(offsets).max() == 13 and (offsets < 0).any() and (offsets > 0).any()


def test_a_shifted_image_brings_in_its_reflected_border():
    from kagglesalt.model.augment import _shifted

    image = np.arange(101 * 101, dtype=np.float32).reshape(101, 101)
    out = _shifted(image, 2, -3)  # 2 down, 3 left
    assert (out[2:, :-3] == image[:-2, 3:]).all()
    assert (out[:2, :-3] == image[[2, 1], 3:]).all()  # rows 2 and 1 mirrored in at the top
    assert (out[2:, -3:] == image[:-2, [99, 98, 97]]).all()  # columns mirrored in at the right


def test_flips_happen_about_half_the_time():
    images = np.zeros((200, 4, 4), np.float32)
    images[:, :, 0] = 1
    flipped, _ = Augment()(images, images.copy(), np.random.default_rng(0))
    share = (flipped[:, 0, -1] == 1).mean()
    assert 0.35 < share < 0.65
