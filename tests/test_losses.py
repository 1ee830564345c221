"""Loss behaviour; runs on whichever Keras backend is selected (tox -e jax for JAX)."""

import keras
import numpy as np
import pytest
from keras import ops

from kagglesalt.model import losses

pytestmark = pytest.mark.backend


def numpy_lovasz_hinge(labels: np.ndarray, logits: np.ndarray) -> float:
    """Per-image Lovász hinge, written from the paper's algorithm."""
    total = []
    for y, f in zip(labels.reshape(len(labels), -1), logits.reshape(len(logits), -1),
                    strict=True):
        errors = 1 - f * (2 * y - 1)
        order = np.argsort(-errors, kind="stable")
        e, g = errors[order], y[order]
        gts = g.sum()
        jaccard = 1 - (gts - np.cumsum(g)) / (gts + np.cumsum(1 - g))
        grad = np.concatenate([jaccard[:1], np.diff(jaccard)])
        total.append(np.dot(np.maximum(e, 0), grad))
    return float(np.mean(total))


def value(loss, y, p) -> float:
    return float(ops.convert_to_numpy(loss(ops.convert_to_tensor(y), ops.convert_to_tensor(p))))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    y = (rng.random((4, 8, 8, 1)) > 0.6).astype("float32")
    y[0] = 0  # an empty image
    logits = rng.normal(0, 2, y.shape).astype("float32")
    return y, logits


def test_lovasz_matches_the_reference_algorithm(batch):
    y, logits = batch
    ours = value(losses.lovasz_hinge(), y, logits)
    assert ours == pytest.approx(numpy_lovasz_hinge(y, logits), rel=1e-5)


def test_bce_matches_the_textbook_formula(batch):
    y, logits = batch
    p = 1 / (1 + np.exp(-logits))
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert value(losses.bce(), y, logits) == pytest.approx(expected, rel=1e-4)
    assert value(losses.bce(from_logits=False), y, p) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("name", losses.NAMES)
def test_every_loss_prefers_the_truth_to_noise(name, batch):
    y, logits = batch
    loss = losses.get(name)
    confident = (2 * y - 1) * 8
    assert value(loss, y, confident) < value(loss, y, logits)
    assert np.isfinite(value(loss, y, logits))


@pytest.mark.parametrize("name", losses.NAMES)
def test_every_loss_has_a_gradient_that_trains(name, batch):
    y, _ = batch
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 3, padding="same")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=losses.get(name))
    x = y + np.random.default_rng(1).normal(0, 0.1, y.shape).astype("float32")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=30, batch_size=4, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


def numpy_lovasz(labels: np.ndarray, logits: np.ndarray, variant: str) -> float:
    hinge = {"relu": lambda e: np.maximum(e, 0),
             "elu": lambda e: np.where(e > 0, e, np.exp(e) - 1) + 1}
    per = []
    for y, f in zip(labels.reshape(len(labels), -1), logits.reshape(len(logits), -1),
                    strict=True):
        def one(y, f, h):
            errors = 1 - f * (2 * y - 1)
            order = np.argsort(-errors, kind="stable")
            e, g = errors[order], y[order]
            jaccard = 1 - (g.sum() - np.cumsum(g)) / (g.sum() + np.cumsum(1 - g))
            return np.dot(h(e), np.concatenate([jaccard[:1], np.diff(jaccard)]))
        if variant == "symmetric":
            per.append((one(y, f, hinge["elu"]) + one(1 - y, -f, hinge["elu"])) / 2)
        else:
            per.append(one(y, f, hinge[variant]))
    return float(np.mean(per))


@pytest.mark.parametrize("variant", losses.LOVASZ_VARIANTS)
def test_every_lovasz_variant_matches_its_reference(variant, batch):
    y, logits = batch
    ours = value(losses.lovasz_hinge(variant=variant), y, logits)
    assert ours == pytest.approx(numpy_lovasz(y, logits, variant), rel=1e-5)


def test_the_symmetric_lovasz_pushes_every_salt_logit_of_an_empty_mask_down():
    empty = np.zeros((1, 8, 8, 1), "float32")
    logits = np.random.default_rng(2).normal(0, 1, empty.shape).astype("float32")
    lower = logits.copy()
    worst = np.unravel_index(np.argmax(logits), logits.shape)
    second = np.unravel_index(np.argsort(logits, axis=None)[-2], logits.shape)
    lower[second] -= 0.5  # a salt logit that is not the largest
    relu, symmetric = losses.lovasz_hinge(), losses.lovasz_hinge(variant="symmetric")
    # The relu hinge of an empty mask sees only its largest logit ...
    assert value(relu, empty, lower) == pytest.approx(value(relu, empty, logits))
    assert worst != second
    # ... the symmetric one rewards lowering any of them.
    assert value(symmetric, empty, lower) < value(symmetric, empty, logits) - 1e-4


@pytest.mark.parametrize("name", losses.NAMES)
def test_a_loss_on_the_pad_window_ignores_the_mirrored_border(name):
    from kagglesalt.model import inputs

    rng = np.random.default_rng(3)
    y = (rng.random((2, 128, 128, 1)) > 0.5).astype("float32")
    logits = rng.normal(0, 2, y.shape).astype("float32")
    window = inputs.loss_window(128, "pad")
    loss = losses.get(name, crop=window)
    other_border = logits.copy()
    other_border[:, :13] = 9
    other_border[:, :, 114:] = -9
    assert value(loss, y, other_border) == pytest.approx(value(loss, y, logits), rel=1e-6)
    crop = (slice(None), slice(13, 114), slice(13, 114))
    assert value(loss, y, logits) == pytest.approx(
        value(losses.get(name), y[crop], logits[crop]), rel=1e-6)
    assert inputs.loss_window(128, "resize") is None


def gradient(loss, y, logits) -> np.ndarray:
    """d loss / d logits, by the selected backend's own differentiation."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(logits)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = loss(tf.constant(y), x)
        return tape.gradient(out, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda f: loss(y, f))(logits))
    import torch

    x = torch.tensor(logits, requires_grad=True)
    loss(torch.tensor(y), x).backward()
    return x.grad.numpy()


def test_the_symmetric_lovasz_gradient_is_the_reference_losss_gradient(batch):
    """Its two terms share one sort; the gradient is still that of the two-sort reference
    (central differences of the numpy algorithm above)."""
    y, logits = batch
    logits = logits.astype("float64")
    step, numeric = 1e-4, np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[i] += step
        down[i] -= step
        numeric[i] = (numpy_lovasz(y, up, "symmetric")
                      - numpy_lovasz(y, down, "symmetric")) / (2 * step)
    ours = gradient(losses.lovasz_hinge(variant="symmetric"), y, logits.astype("float32"))
    np.testing.assert_allclose(ours, numeric, atol=2e-4)
    assert np.abs(numeric).max() > 1e-3  # a gradient that says something
