"""Building blocks the shipped U-Nets share as options (parameters, off by default).

scSE, concurrent spatial and channel squeeze & excitation (Roy, Navab and Wachinger 2018): a
feature map re-weighted twice and the two results summed, per channel by a gate computed
from the whole image (global average, a bottleneck, a sigmoid) and per pixel by a gate
computed from all channels at that pixel (a 1x1 convolution and a sigmoid).

Hypercolumn: the final pixel classifier sees every decoder level, each upsampled to the
full size and concatenated, not only the last one, so coarse context reaches each pixel's
decision directly.

Several top TGS solutions used both. scSE adds under 1% weights and no measurable time; the
hypercolumn's wide full-size map made `unet_lite` 44% slower on a CPU. Neither changed its
score at 30 epochs (bench/RESULTS.md, 2026-12-01); a GPU run of `unet_deep` may say otherwise.
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


def hypercolumn(levels: list, name: str = "hypercolumn"):
    """The decoder's outputs, coarsest first and the full-size one last, each upsampled
    (bilinearly) to the full size and concatenated."""
    from keras import layers

    size = levels[-1].shape[1]
    columns = [layers.UpSampling2D(size // level.shape[1], interpolation="bilinear",
                                   name=f"{name}_up{i}")(level)
               for i, level in enumerate(levels[:-1])]
    return layers.concatenate([*columns, levels[-1]], name=name)
