"""Segmentation losses in `keras.ops` only, so they run on every Keras backend.

All take `y_true` of 0/1 and `y_pred` of logits (`from_logits=True`) or probabilities, with
shape (N, S, S, 1).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

NAMES = ("bce", "bce_dice", "lovasz")
SCHEDULES = {"bce": ["bce"], "bce_dice": ["bce_dice"], "lovasz": ["lovasz"],
             "bce+lovasz": ["bce_dice", "lovasz"]}
_EPS = 1e-6


def _as_logits(y_pred, from_logits: bool):
    if from_logits:
        return y_pred
    p = ops.clip(y_pred, _EPS, 1 - _EPS)
    return ops.log(p / (1 - p))


def _flat(x):
    return ops.reshape(x, (ops.shape(x)[0], -1))


def bce(from_logits: bool = True) -> Callable:
    def loss(y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        return ops.mean(keras.losses.binary_crossentropy(_flat(y_true), _flat(y_pred),
                                                         from_logits=from_logits))
    loss.__name__ = "bce"
    return loss


def soft_dice(y_true, probabilities):
    """1 - Dice over the whole batch (stable on empty images)."""
    y_true, p = _flat(y_true), _flat(probabilities)
    intersection = ops.sum(y_true * p)
    return 1.0 - (2.0 * intersection + 1.0) / (ops.sum(y_true) + ops.sum(p) + 1.0)


def bce_dice(from_logits: bool = True) -> Callable:
    cross_entropy = bce(from_logits)

    def loss(y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.sigmoid(y_pred) if from_logits else y_pred
        return cross_entropy(y_true, y_pred) + soft_dice(y_true, p)
    loss.__name__ = "bce_dice"
    return loss


def lovasz_hinge(from_logits: bool = True) -> Callable:
    """Per-image Lovász hinge (Berman et al. 2018): a convex surrogate of 1 - IoU."""

    def loss(y_true, y_pred):
        labels = ops.cast(_flat(y_true), "float32")
        logits = ops.cast(_flat(_as_logits(y_pred, from_logits)), "float32")
        signs = 2.0 * labels - 1.0
        errors = 1.0 - logits * signs
        order = ops.stop_gradient(ops.argsort(-errors, axis=-1))
        errors_sorted = ops.take_along_axis(errors, order, axis=-1)
        labels_sorted = ops.take_along_axis(labels, order, axis=-1)
        gts = ops.sum(labels_sorted, axis=-1, keepdims=True)
        intersection = gts - ops.cumsum(labels_sorted, axis=-1)
        union = gts + ops.cumsum(1.0 - labels_sorted, axis=-1)
        jaccard = 1.0 - intersection / union
        grad = ops.concatenate([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=-1)
        per_image = ops.sum(ops.relu(errors_sorted) * ops.stop_gradient(grad), axis=-1)
        return ops.mean(per_image)
    loss.__name__ = "lovasz"
    return loss


BUILDERS = {"bce": bce, "bce_dice": bce_dice, "lovasz": lovasz_hinge}


def get(name: str, from_logits: bool = True) -> Callable:
    return BUILDERS[name](from_logits)
