"""Concurrent spatial and channel squeeze & excitation (scSE; Roy, Navab and Wachinger 2018).

A feature map is re-weighted twice and the two results summed: per channel, by a gate
computed from the whole image (the channel "squeeze": global average, a bottleneck, a
sigmoid), and per pixel, by a gate computed from all channels at that pixel (a 1x1
convolution and a sigmoid). Several top TGS solutions put it after each decoder block; it
costs few parameters and little compute next to the 3x3 convolutions.
"""

from __future__ import annotations


def scse(x, name: str, reduction: int = 4):
    """`x` re-weighted by its channel gate plus `x` re-weighted by its pixel gate."""
    from keras import layers  # imported on use, so that listing commands stays fast

    channels = x.shape[-1]
    squeezed = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_cse_pool")(x)
    squeezed = layers.Conv2D(max(1, channels // reduction), 1, activation="relu",
                             name=f"{name}_cse_reduce")(squeezed)
    channel_gate = layers.Conv2D(channels, 1, activation="sigmoid",
                                 name=f"{name}_cse_gate")(squeezed)
    pixel_gate = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_sse_gate")(x)
    return layers.add([layers.multiply([x, channel_gate], name=f"{name}_cse"),
                       layers.multiply([x, pixel_gate], name=f"{name}_sse")],
                      name=f"{name}_scse")
