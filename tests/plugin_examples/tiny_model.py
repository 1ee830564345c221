"""A workspace plugin as a user would write one: a very small U-Net for fast tests."""

import keras
from keras import layers

from kagglesalt.hookspecs import hookimpl


def build(input_size=32, width=4):
    inputs = keras.Input((input_size, input_size, 1))
    x = layers.Conv2D(width, 3, padding="same", activation="relu")(inputs)
    skip = x
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(width * 2, 3, padding="same", activation="relu")(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.concatenate([x, skip])
    x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, layers.Conv2D(1, 1)(x))


def build_with_head(input_size=32, width=4):
    """The tiny U-Net with an image-level 'has salt' logit that gates its pixels."""
    segmenter = build(input_size, width)
    features = segmenter.layers[-2].output
    has_salt = layers.Dense(1)(layers.GlobalAveragePooling2D()(features))
    gate = layers.Reshape((1, 1, 1))(layers.Activation("log_sigmoid")(has_salt))
    salt = layers.Add()([segmenter.output, gate])
    return keras.Model(segmenter.inputs, [salt, has_salt])


@hookimpl
def register_models(register):
    register("tiny", build, description="two-level U-Net for tests", params={"width": 4},
             input_size=32, input_mode="resize", loss="bce_dice", epochs=2, batch_size=16,
             learning_rate=3e-3, schedule="plateau")
    register("tiny_head", build_with_head, description="tiny U-Net with a has-salt head",
             params={"width": 4}, input_size=32, input_mode="resize", loss="bce_dice",
             epochs=2, batch_size=16, learning_rate=3e-3, schedule="plateau")
