"""The classic notebook U-Net: 8-16-32-64 filters, a 128-filter bottleneck, transposed
convolutions up, a sigmoid out. Kept as the baseline every other model must beat."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kagglesalt.hookspecs import hookimpl

if TYPE_CHECKING:
    import keras


def build(input_size: int = 128, start_filters: int = 8,
          dropout: float = 0.5) -> keras.Model:
    import keras  # imported on use, so that listing commands stays fast
    from keras import layers

    inputs = keras.Input((input_size, input_size, 1), name="image")
    x, skips = inputs, []
    for depth in range(4):
        width = start_filters * 2**depth
        x = layers.Conv2D(width, 3, activation="relu", padding="same")(x)
        x = layers.Conv2D(width, 3, activation="relu", padding="same")(x)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(dropout / 2 if depth == 0 else dropout)(x)
    width = start_filters * 16
    x = layers.Conv2D(width, 3, activation="relu", padding="same")(x)
    x = layers.Conv2D(width, 3, activation="relu", padding="same")(x)
    for depth in reversed(range(4)):
        width = start_filters * 2**depth
        x = layers.Conv2DTranspose(width, 3, strides=2, padding="same")(x)
        x = layers.concatenate([x, skips[depth]])
        x = layers.Dropout(dropout)(x)
        x = layers.Conv2D(width, 3, activation="relu", padding="same")(x)
        x = layers.Conv2D(width, 3, activation="relu", padding="same")(x)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="salt")(x)
    return keras.Model(inputs, outputs, name="unet")


@hookimpl
def register_models(register):
    register("unet", build,
             description="classic notebook U-Net (8-16-32-64, sigmoid): the baseline",
             params={"start_filters": 8, "dropout": 0.5},
             input_size=128, input_mode="resize", logits=False, loss="bce",
             epochs=30, batch_size=32, learning_rate=1e-3, schedule="plateau")
