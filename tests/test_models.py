"""The shipped models; runs on whichever Keras backend is selected (tox -e jax for JAX)."""

import keras
import numpy as np
import pytest

from kagglesalt import plugins

pytestmark = pytest.mark.backend


@pytest.mark.parametrize("name, params", [("unet", 540_073), ("unet_deep", 5_117_170)])
def test_shipped_models_build_at_their_defaults(name, params):
    spec = plugins.get_model(name)
    model = spec.build(input_size=spec.default("input_size"), **spec.params)
    assert model.count_params() == params
    out = model.predict(np.zeros((2, 128, 128, 1), np.float32), verbose=0)
    shapes = [o.shape for o in out] if isinstance(out, list) else [out.shape]
    assert shapes[0] == (2, 128, 128, 1) and shapes[1:] in ([], [(2, 1)])


def test_the_deep_unet_has_salt_head_gates_its_pixels_and_training_predicts_one_map():
    from kagglesalt.model.fold import build_models

    spec = plugins.get_model("unet_deep")
    model, predictor = build_models(spec, spec.training_settings())
    assert [tuple(o.shape[1:]) for o in model.outputs] == [(128, 128, 1), (1,)]
    x = np.random.default_rng(0).random((2, 128, 128, 1)).astype(np.float32)
    salt, has_salt = model.predict(x, verbose=0)
    assert np.allclose(predictor.predict(x, verbose=0), salt)
    # The combined logit is the pixel logit plus log sigmoid(has_salt): never above it.
    pixels = keras.Model(model.inputs, model.get_layer("salt_logits").output).predict(
        x, verbose=0)
    log_p = -np.logaddexp(0, -has_salt)
    assert np.allclose(salt, pixels + log_p[:, :, None, None], atol=1e-4)
    plain = spec.build(input_size=128, **{**spec.params, "has_salt_head": False})
    assert len(plain.outputs) == 1


def test_the_classic_unet_gives_probabilities_and_the_deep_one_logits():
    classic = plugins.get_model("unet")
    deep = plugins.get_model("unet_deep")
    assert classic.default("logits") is False and deep.default("logits") is True
    x = np.random.default_rng(0).random((1, 128, 128, 1)).astype(np.float32)
    model = classic.build(**classic.params)
    assert model.layers[-1].activation is keras.activations.sigmoid  # probabilities
    logits = deep.build(input_size=128, **deep.params).predict(x, verbose=0)[0]
    assert logits.min() < 0  # not squashed: the losses and TTA take logits


def test_the_deep_unet_width_is_configurable():
    spec = plugins.get_model("unet_deep")
    narrow = spec.build(input_size=128, start_filters=8, dropout=0.5, depth=4)
    assert narrow.count_params() < 5_117_170 / 3


@pytest.mark.parametrize("name", ["unet_lite", "unet_deep"])
def test_scse_gates_each_decoder_block_for_a_few_parameters_more(name):
    spec = plugins.get_model(name)
    size = spec.default("input_size")
    plain = spec.build(input_size=size, **spec.params)
    gated = spec.build(input_size=size, **{**spec.params, "scse": True})
    gates = [layer.name for layer in gated.layers if layer.name.endswith("_scse")]
    assert gates == [f"up{d}_scse" for d in reversed(range(spec.params["depth"]))]
    assert plain.count_params() < gated.count_params() < 1.02 * plain.count_params()
    out = gated.predict(np.zeros((1, size, size, 1), np.float32), verbose=0)
    assert out[0].shape == (1, size, size, 1)


@pytest.mark.parametrize("name", ["unet_lite", "unet_deep"])
def test_a_hypercolumn_gives_the_pixel_classifier_every_decoder_level_at_full_size(name):
    spec = plugins.get_model(name)
    size, depth = spec.default("input_size"), spec.params["depth"]
    model = spec.build(input_size=size, **{**spec.params, "hypercolumn": True})
    column = model.get_layer("hypercolumn").output
    widths = sum(spec.params["start_filters"] * 2**d for d in range(depth))
    assert tuple(column.shape[1:]) == (size, size, widths)
    classifier = model.get_layer("salt_logits")
    assert classifier.input.shape[-1] == widths
    plain = spec.build(input_size=size, **spec.params)
    assert model.count_params() - plain.count_params() == widths - spec.params["start_filters"]


@pytest.mark.parametrize("params, message", [
    ({"start_filters": "abc"}, "parameter start_filters must be an integer"),
    ({"start_filters": True}, "parameter start_filters must be an integer"),
    ({"dropout": "high"}, "parameter dropout must be a number"),
    ({"has_salt_head": 1}, "parameter has_salt_head must be true or false"),
])
def test_model_parameters_of_the_wrong_kind_are_refused_before_anything_runs(params, message):
    from kagglesalt import plugins
    from kagglesalt.errors import KaggleSaltError

    with pytest.raises(KaggleSaltError, match=message):
        plugins.get_model("unet_deep").training_settings({"params": params})
    plugins.get_model("unet_deep").training_settings({"params": {"dropout": 1}})  # 1 is 1.0
