"""Predictions on the 101x101 grid; runs on whichever Keras backend is selected."""

import keras
import numpy as np
import pytest

from kagglesalt.competition import metric
from kagglesalt.model import inference, inputs

pytestmark = pytest.mark.backend


def copying_model(size: int) -> keras.Model:
    image = keras.Input((size, size, 1))
    return keras.Model(image, keras.layers.Identity()(image))


def masks_as_images(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 101, 101), bool)
    for m in masks[2:]:  # two empty images, the rest with a salt body near an edge or not
        top, left = rng.integers(0, 80, 2)
        m[top:top + rng.integers(5, 40), left:left + rng.integers(3, 30)] = True
    return masks.astype(np.uint8) * 255, masks


@pytest.mark.parametrize("mode", inputs.MODES)
def test_flip_tta_of_a_model_that_copies_its_input_is_exact(mode):
    images, masks = masks_as_images()
    levels = inference.levels([copying_model(128)], images, 128, mode, logits=False, tta=True)
    assert ((levels > 127) == masks).all()
    assert metric.threshold_curve(masks, levels).score == 1.0
    if mode == "pad":  # padding keeps native pixels, so the TTA mean is the image itself
        assert (levels == images).all()


def test_several_models_are_averaged_as_probabilities():
    images, _ = masks_as_images(4)
    image = keras.Input((128, 128, 1))
    half = keras.Model(image, keras.layers.Rescaling(0.5)(image))
    both = inference.probabilities([copying_model(128), half], images, 128, "pad", logits=False)
    assert np.allclose(both, images / 255 * 0.75, atol=1e-6)


def test_the_probability_step_is_made_once_per_model_and_follows_its_weights():
    image = keras.Input((128, 128, 1))
    model = keras.Model(image, keras.layers.Conv2D(1, 1, use_bias=False)(image))
    model.set_weights([np.ones((1, 1, 1, 1), np.float32)])
    images, _ = masks_as_images(3)
    first = inference.probabilities([model], images, 128, "pad", logits=True, tta=False)
    assert np.allclose(first, 1 / (1 + np.exp(-images.astype(float) / 255)), atol=1e-6)
    wrapped = inference._probability_model(model, "pad", True)
    model.set_weights([np.zeros((1, 1, 1, 1), np.float32)])  # as training changes them
    second = inference.probabilities([model], images, 128, "pad", logits=True, tta=False)
    assert np.allclose(second, 0.5) and inference._probability_model(model, "pad", True) is wrapped
    inference.release([model])
    assert inference._probability_model(model, "pad", True) is not wrapped
