"""A residual U-Net with batch norm and dropout, producing logits.

Each level is a convolution followed by two residual blocks (pre-activation, 3x3 + 3x3),
widths doubling from `start_filters` down to a 16x bottleneck at 8x8. About 5M parameters at
the default width 16.

With `has_salt_head`, the bottleneck also feeds an image-level "has salt" logit c (deep
supervision: kagglesalt trains it with BCE against "the mask is not empty"), and the pixel
logits become l + log sigmoid(c): the odds of salt scaled by the probability that the image
has any. An image the head calls empty gets no salt anywhere, and the pixel map no longer
has to learn that 39% of the images are empty on its own.

Its defaults are the training recipe for one GPU, sized by the review of #14 (to be
confirmed there): 160 epochs at batch 128 and 2e-3, 16-bit compute on a GPU; BCE + Dice
for 15% of the epochs, then the symmetric Lovász hinge for 85% as two cosine cycles whose
end points are averaged as snapshots; dropout 0.2; crop, shift (up to 13 pixels, as the 4th
place moved the image inside its pad), brightness and contrast augmentation; reflect-padding
to 128 so every pixel keeps its native scale. The held-out images are scored every 10th
epoch and at cycle ends: with snapshots the score picks no weights, it only shows the
trajectory, and each scoring costs a prediction pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kagglesalt_plugins import blocks
from kagglesalt_plugins.heads import with_has_salt_head

from kagglesalt.hookspecs import hookimpl

if TYPE_CHECKING:
    import keras


def residual_block(x, width: int, name: str):
    from keras import layers  # imported on use, so that listing commands stays fast

    from kagglesalt.model.layers import BatchNormalization  # fused on TensorFlow

    shortcut = x
    y = BatchNormalization(name=f"{name}_bn1")(x)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(width, 3, padding="same", name=f"{name}_conv1")(y)
    y = BatchNormalization(name=f"{name}_bn2")(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(width, 3, padding="same", name=f"{name}_conv2")(y)
    return layers.add([shortcut, y], name=f"{name}_add")


def level(x, width: int, name: str):
    from keras import layers

    x = layers.Conv2D(width, 3, padding="same", name=f"{name}_in")(x)
    x = residual_block(x, width, f"{name}_res1")
    x = residual_block(x, width, f"{name}_res2")
    return layers.Activation("relu", name=f"{name}_out")(x)


def build(input_size: int = 128, start_filters: int = 16, dropout: float = 0.2,
          depth: int = 4, has_salt_head: bool = True, scse: bool = False,
          hypercolumn: bool = False) -> keras.Model:
    import keras
    from keras import layers

    inputs = keras.Input((input_size, input_size, 1), name="image")
    x, skips = inputs, []
    for d in range(depth):
        x = level(x, start_filters * 2**d, f"down{d}")
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(dropout / 2 if d == 0 else dropout)(x)
    x = level(x, start_filters * 2**depth, "middle")
    bottleneck = x
    decoded = []
    for d in reversed(range(depth)):
        width = start_filters * 2**d
        x = layers.Conv2DTranspose(width, 3, strides=2, padding="same", name=f"up{d}_t")(x)
        x = layers.concatenate([x, skips[d]])
        x = layers.Dropout(dropout)(x)
        x = level(x, width, f"up{d}")
        if scse:
            x = blocks.scse(x, f"up{d}")
        decoded.append(x)
    if hypercolumn:
        x = blocks.hypercolumn(decoded)
    # Outputs in float32, also under mixed precision.
    pixels = layers.Conv2D(1, 1, name="salt_logits", dtype="float32")(x)
    if not has_salt_head:
        return keras.Model(inputs, pixels, name="unet_deep")
    return with_has_salt_head(inputs, pixels, bottleneck, "unet_deep")


@hookimpl
def register_models(register):
    register("unet_deep", build,
             description="residual U-Net with a has-salt head; BCE+Dice, then symmetric "
                         "Lovász in 2 cosine cycles averaged as snapshots",
             params={"start_filters": 16, "dropout": 0.2, "depth": 4, "has_salt_head": True,
                     "scse": False, "hypercolumn": False},
             input_size=128, input_mode="pad", logits=True, loss="bce+lovasz",
             lovasz="symmetric", lovasz_share=0.85, epochs=160, batch_size=128,
             learning_rate=2e-3, schedule="cosine", snapshots=2, validate_every=10,
             precision="auto",
             augment={"crop_scale": 0.2, "shift": 0.13, "brightness": 0.1, "contrast": 0.15})
