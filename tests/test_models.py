"""The shipped models; runs on whichever Keras backend is selected (tox -e jax for JAX)."""

import numpy as np
import pytest

from kagglesalt import plugins

pytestmark = pytest.mark.backend


@pytest.mark.parametrize("name, params", [("unet", 540_073), ("unet_deep", 5_116_913)])
def test_shipped_models_build_at_their_defaults(name, params):
    spec = plugins.get_model(name)
    model = spec.build(input_size=spec.default("input_size"), **spec.params)
    assert model.count_params() == params
    out = model.predict(np.zeros((2, 128, 128, 1), np.float32), verbose=0)
    assert out.shape == (2, 128, 128, 1)


def test_the_classic_unet_gives_probabilities_and_the_deep_one_logits():
    classic = plugins.get_model("unet")
    deep = plugins.get_model("unet_deep")
    assert classic.default("logits") is False and deep.default("logits") is True
    x = np.random.default_rng(0).random((1, 128, 128, 1)).astype(np.float32)
    p = classic.build(**classic.params).predict(x, verbose=0)
    assert p.min() >= 0 and p.max() <= 1


def test_the_deep_unet_width_is_configurable():
    spec = plugins.get_model("unet_deep")
    narrow = spec.build(input_size=128, start_filters=8, dropout=0.5, depth=4)
    assert narrow.count_params() < 5_116_913 / 3
