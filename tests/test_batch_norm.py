"""kagglesalt's batch norm is Keras's layer in all but speed: the same outputs, gradients,
moving statistics and file format, on every backend (tox -e jax runs these on JAX)."""

from pathlib import Path

import keras
import numpy as np
import pytest

from kagglesalt.model.layers import BatchNormalization

pytestmark = pytest.mark.backend
FIXTURE = Path(__file__).parent / "fixtures" / "batch_norm"


def train_step(layer, x: np.ndarray):
    """The layer's training output and d(sum(output * sin x))/d(x, gamma, beta), by the
    backend's own differentiation."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt, training=True)
            loss = tf.reduce_sum(y * tf.sin(xt))
        grads = tape.gradient(loss, [xt, layer.gamma, layer.beta])
        return y.numpy(), [g.numpy() for g in grads]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def loss(x, gamma, beta):
            values = [gamma, beta, layer.moving_mean.value, layer.moving_variance.value]
            y, _ = layer.stateless_call(values[:2], values[2:], x, training=True)
            return jnp.sum(y * jnp.sin(x)), y

        (_, y), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(
            x, layer.gamma.value, layer.beta.value)
        layer(x, training=True)  # the moving statistics, as a training step leaves them
        return np.asarray(y), [np.asarray(g) for g in grads]
    pytest.skip(f"no gradient helper for {backend}")


@pytest.mark.parametrize("shape", [(8, 12, 12, 5), (3, 7, 9, 2)])
def test_training_matches_keras_batch_norm_outputs_gradients_and_moving_statistics(shape):
    x = np.random.default_rng(0).normal(2, 3, shape).astype("float32")
    ours, theirs = BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    ours.build(shape)
    theirs.build(shape)
    ours.set_weights([w + 0.1 * (i + 1) for i, w in enumerate(theirs.get_weights())])
    theirs.set_weights(ours.get_weights())
    y_ours, g_ours = train_step(ours, x)
    y_theirs, g_theirs = train_step(theirs, x)
    np.testing.assert_allclose(y_ours, y_theirs, atol=2e-5)
    for a, b in zip(g_ours, g_theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ours.get_weights()[2], 0.1 * 3)  # the moving mean moved


def test_inference_and_configuration_are_keras_batch_norms():
    x = np.random.default_rng(1).normal(0, 1, (2, 4, 4, 3)).astype("float32")
    ours = BatchNormalization(epsilon=1e-2, center=False)
    theirs = keras.layers.BatchNormalization(epsilon=1e-2, center=False)
    ours.build(x.shape)
    theirs.build(x.shape)
    ours.set_weights([w * 0.5 + 0.2 for w in theirs.get_weights()])
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)),
                               keras.ops.convert_to_numpy(theirs(x)), atol=1e-6)
    assert ours.get_config() == {**theirs.get_config(), "name": ours.name}


def test_a_model_saved_on_tensorflow_loads_and_predicts_the_same_on_this_backend():
    """tests/fixtures/batch_norm/make.py trained and saved it on TensorFlow."""
    model = keras.models.load_model(FIXTURE / "model.keras")
    expected = np.load(FIXTURE / "expected.npz")
    assert isinstance(model.get_layer("bn"), BatchNormalization)
    np.testing.assert_allclose(model.predict(expected["images"], verbose=0),
                               expected["predictions"], atol=1e-5)


def test_a_model_built_here_round_trips_through_a_keras_file(tmp_path):
    from kagglesalt import plugins

    spec = plugins.get_model("unet_lite")
    model = spec.build(input_size=112, **spec.params)
    assert any(isinstance(layer, BatchNormalization) for layer in model.layers)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(2).random((1, 112, 112, 1)).astype("float32")
    np.testing.assert_allclose(again.predict(x, verbose=0)[0], model.predict(x, verbose=0)[0],
                               atol=1e-6)
