"""Model predictions as probabilities on the 101x101 grid, with horizontal-flip TTA.

Several models (the snapshots of a fold, or the folds of a run) are averaged as
probabilities, each with its TTA views.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from kagglesalt.competition import metric
from kagglesalt.model import inputs

CHUNK = 2048  # images per step: bounds memory on the 18,000 test images


KEEP = 64  # probability models kept for reuse; each holds its model (and its weights)
_on_device: OrderedDict[tuple[int, str, bool], tuple[Any, Any]] = OrderedDict()


def _probability_model(model, input_mode: str, logits: bool):
    """`model` followed by the sigmoid (for logits) and, in pad mode, the crop back to
    101x101, so that the device does that work and sends back 101x101 probabilities
    instead of 128x128 logits. Made once per model and reused (it shares the model's
    weights, and keeps its compiled prediction step), the last KEEP of them."""
    key = (id(model), input_mode, logits)
    made = _on_device
    if key in made and made[key][0] is not model:  # an id reused by a new model
        del made[key]
    if key not in made:
        import keras

        image = keras.Input(model.input_shape[1:])
        out = model(image)
        if logits:
            out = keras.layers.Activation("sigmoid", dtype="float32")(out)
        if input_mode == "pad":
            before, after = inputs.pads(model.input_shape[1])
            out = keras.layers.Cropping2D(((before, after), (before, after)))(out)
        made[key] = (model, keras.Model(image, out))
        while len(made) > KEEP:
            made.popitem(last=False)
    made.move_to_end(key)
    return made[key][1]


def batch_size(training_batch: int) -> int:
    """The prediction batch of a model trained at `training_batch`: one rule for the
    validation scores, the fold's predictions and `kagglesalt predict`, so that the same
    images give the same levels to the last bit wherever they are predicted."""
    return max(64, training_batch * 2)


def release(models: Sequence) -> None:
    """Forget the probability models of `models` (a fold's models, once it is done)."""
    ids = {id(m) for m in models}
    for key in [k for k in _on_device if k[0] in ids]:
        del _on_device[key]


def probabilities(models: Sequence, images: np.ndarray, input_size: int, input_mode: str,
                  logits: bool, tta: bool = True, batch_size: int = 64) -> np.ndarray:
    """float32 (N, 101, 101) mean salt probability of `models` for a few uint8 images.

    The flipped view is the flipped 101x101 image brought to the model's size, and its
    prediction is cropped back before it is flipped back: flipping the padded input instead
    would land one column off, since the padding is 13 pixels before and 14 after."""
    views = [images, images[:, :, ::-1]] if tta else [images]
    total = np.zeros((len(images), inputs.SIZE, inputs.SIZE), np.float32)
    for k, view in enumerate(views):
        x = inputs.to_input(np.ascontiguousarray(view), input_size, input_mode)
        for model in models:
            device = _probability_model(model, input_mode, logits)
            p = inputs.from_output(np.asarray(device.predict(x, batch_size=batch_size,
                                                             verbose=0)), input_mode)
            total += p[:, :, ::-1] if k == 1 else p
    return total / (len(views) * len(models))


def levels(models: Sequence, images: np.ndarray, input_size: int, input_mode: str,
           logits: bool, tta: bool = True, batch_size: int = 64) -> np.ndarray:
    """uint8 (N, 101, 101) salt probability levels (see metric.to_levels) of the mean of
    `models`, with TTA. Quantised chunk by chunk, so 18,000 test images never exist as
    float32 (734 MB)."""
    out = np.empty((len(images), inputs.SIZE, inputs.SIZE), np.uint8)
    for start in range(0, len(images), CHUNK):
        chunk = images[start:start + CHUNK]
        out[start:start + len(chunk)] = metric.to_levels(probabilities(
            models, chunk, input_size, input_mode, logits, tta, batch_size))
    return out
