"""A light U-Net with batch norm, made for a CPU and a time budget.

On a 2-core CPU the classic U-Net learns slowly (no normalisation, so a low rate) and at 64x64
it blurs the boundaries the metric's IoU 0.95 threshold rewards; `unet_deep` is ~40x slower.
This one keeps every pixel at its native scale (reflect-padded to 112), normalises each
convolution so a brisk rate works, upsamples bilinearly (no transposed-convolution
checkerboards) and gates its pixels with an image-level "has salt" logit from the bottleneck,
as `unet_deep` does.

Its defaults are the recipe chosen on the real data (fold 1 of 3, bench/RESULTS.md): 0.728
after 16 epochs against 0.616 for the classic U-Net at 64x64 given 28; the has-salt head is
worth +0.02, a Lovász stage at the end +0.007, light augmentation +0.004 at 30 epochs; 12
filters lose at equal time, and so does 64x64; scSE and a hypercolumn (parameters) change
nothing at 30 epochs, and the hypercolumn costs 44% more time. Meant to be trained to a
time budget (`cv --minutes`), which sets the epochs; 40 otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kagglesalt_plugins import blocks
from kagglesalt_plugins.heads import with_has_salt_head

from kagglesalt.hookspecs import hookimpl

if TYPE_CHECKING:
    import keras


def conv_block(x, width: int, name: str):
    """Two 3x3 convolutions, each batch-normalised and rectified."""
    from keras import layers  # imported on use, so that listing commands stays fast

    from kagglesalt.model.layers import BatchNormalization  # fused on TensorFlow

    for i in (1, 2):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def build(input_size: int = 112, start_filters: int = 8, depth: int = 4,
          dropout: float = 0.1, has_salt_head: bool = True, scse: bool = False,
          hypercolumn: bool = False) -> keras.Model:
    import keras
    from keras import layers

    inputs = keras.Input((input_size, input_size, 1), name="image")
    x, skips = inputs, []
    for d in range(depth):
        x = conv_block(x, start_filters * 2**d, f"down{d}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{d}_pool")(x)
    x = conv_block(x, start_filters * 2**depth, "middle")
    bottleneck = layers.Dropout(dropout, name="middle_dropout")(x)
    x = bottleneck
    decoded = []
    for d in reversed(range(depth)):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{d}_upsample")(x)
        x = layers.concatenate([x, skips[d]], name=f"up{d}_concat")
        x = conv_block(x, start_filters * 2**d, f"up{d}")
        if scse:
            x = blocks.scse(x, f"up{d}")
        decoded.append(x)
    if hypercolumn:
        x = blocks.hypercolumn(decoded)
    pixels = layers.Conv2D(1, 1, name="salt_logits", dtype="float32")(x)
    if not has_salt_head:
        return keras.Model(inputs, pixels, name="unet_lite")
    return with_has_salt_head(inputs, pixels, bottleneck, "unet_lite")


@hookimpl
def register_models(register):
    register("unet_lite", build,
             description="light batch-norm U-Net at native scale with a has-salt head: "
                         "the CPU recipe (cv --minutes)",
             params={"start_filters": 8, "depth": 4, "dropout": 0.1, "has_salt_head": True,
                     "scse": False, "hypercolumn": False},
             input_size=112, input_mode="pad", logits=True, loss="bce+lovasz",
             lovasz="symmetric", lovasz_share=0.4, epochs=40, batch_size=32,
             learning_rate=3e-3, schedule="cosine", snapshots=1, validate_every=5,
             augment={"crop_scale": 0.1, "brightness": 0.05, "contrast": 0.1},
             learns_in=8)
