"""The image-level "has salt" head that the shipped U-Nets share.

The bottleneck feeds a "has salt" logit c (kagglesalt trains it with BCE against "the mask
is not empty"), and the pixel logits become l + log sigmoid(c): the odds of salt scaled by
the probability that the image has any, so an image the head calls empty gets no salt
anywhere. The model then has two outputs, the gated pixels first, as kagglesalt expects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def with_has_salt_head(inputs, pixels, bottleneck, name: str) -> keras.Model:
    """A model of `inputs` whose outputs are the gated `pixels` logits and the has-salt
    logit pooled from `bottleneck` (both float32, also under mixed precision)."""
    import keras
    from keras import layers

    pooled = layers.GlobalAveragePooling2D(name="has_salt_pool")(bottleneck)
    has_salt = layers.Dense(1, name="has_salt", dtype="float32")(pooled)
    gate = layers.Activation("log_sigmoid", name="has_salt_log_p", dtype="float32")(has_salt)
    gate = layers.Reshape((1, 1, 1), name="has_salt_gate")(gate)
    salt = layers.Add(name="salt", dtype="float32")([pixels, gate])
    return keras.Model(inputs, [salt, has_salt], name=name)
