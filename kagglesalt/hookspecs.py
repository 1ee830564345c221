"""The hooks a kagglesalt plugin may implement.

A plugin is a module (or object) with functions marked `@hookimpl` and named as below. Ship it
in a package with an entry point in the group `kagglesalt`, or drop a `.py` file into a
workspace plugins folder (`--plugins-dir` or `KAGGLESALT_PLUGINS_DIR`).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("kagglesalt")
hookimpl = pluggy.HookimplMarker("kagglesalt")


@hookspec
def register_models(register):
    """Register segmentation models.

    Call `register(name, build, description=..., **defaults)` once per model:

    - `build(input_size=S, **params) -> keras.Model` maps an (S, S, 1) float image in [0, 1]
      to an (S, S, 1) map of logits (or of probabilities when `logits=False`); `params` are
      the model's own hyperparameters, given as `params={...}` defaults and overridable with
      `--param key=value`.
    - defaults (all optional): `input_size` (128), `input_mode` ("resize" or "pad": how the
      101x101 image becomes S x S and back), `logits` (True), `loss` ("bce", "bce_dice",
      "lovasz" or "bce+lovasz"), `epochs`, `batch_size`, `learning_rate`, `schedule`
      ("plateau" or "cosine").

    The return value is ignored.
    """


@hookspec
def register_commands(cli):
    """Add click commands to the `kagglesalt` group `cli` (call `cli.command()` or
    `cli.add_command(...)`). The return value is ignored."""
