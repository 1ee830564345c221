"""Keras layers of kagglesalt's own, for plugins to build with.

`BatchNormalization` is Keras's layer with the same weights, configuration and results, but
in training on TensorFlow it runs TensorFlow's fused kernel (`FusedBatchNormV3`): Keras 3
computes the moments and the normalisation in separate ops, and on a 2-core CPU that was a
quarter of `unet_lite`'s training step (the fused kernel made the whole step about 1.5x
faster: bench/RESULTS.md). On JAX and PyTorch, and in inference everywhere, it is Keras's
layer unchanged, so a `.keras` file saved on one backend loads and predicts on the others.

A model that uses it loads once this module is imported (it registers the layer as
"kagglesalt>BatchNormalization"); `kagglesalt.predict.load_models` does that.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kagglesalt")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, fused on TensorFlow in training (channels last,
    4-D inputs, no mask, no renorm, not synchronised); otherwise Keras's own path."""

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        return self._fused_training_call(inputs)

    def _fusable(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None and not self.renorm
                and not self.synchronized and len(inputs.shape) == 4
                and self.axis in (-1, 3))

    def _fused_training_call(self, inputs):
        import tensorflow as tf

        x = tf.cast(inputs, "float32")  # as Keras's layer computes, also under mixed precision
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels])
        y, mean, unbiased_variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=tf.constant([], "float32"),
            variance=tf.constant([], "float32"), epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        # The kernel hands back the variance with Bessel's correction; Keras's layer keeps
        # the moving average of the plain (biased) batch variance, and so does this one.
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), "float32")
        variance = unbiased_variance * (count - 1.0) / tf.maximum(count, 1.0)
        mean, variance = tf.stop_gradient(mean), tf.stop_gradient(variance)
        self.moving_mean.assign(self.moving_mean * self.momentum
                                + ops.cast(mean, self.moving_mean.dtype) * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum
            + ops.cast(variance, self.moving_variance.dtype) * (1.0 - self.momentum))
        return ops.cast(y, self.compute_dtype)
