"""The hooks a kagglesalt plugin may implement.

A plugin is a module (or object) with functions marked `@hookimpl` and named as below. Ship it
in a package with an entry point in the group `kagglesalt`, or drop a `.py` file into a
workspace plugins folder (`--plugins-dir` or `KAGGLESALT_PLUGINS_DIR`).
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

hookspec = pluggy.HookspecMarker("kagglesalt")
hookimpl = pluggy.HookimplMarker("kagglesalt")


class ModelBuilder(Protocol):
    """Builds a model: `build(input_size=S, **params) -> keras.Model` (typed Any here, so
    that plugins and this module need not import Keras to be checked)."""

    def __call__(self, input_size: int, **params: Any) -> Any: ...


class Register(Protocol):
    """What `register_models` is given."""

    def __call__(self, name: str, build: ModelBuilder, description: str = "",
                 params: dict[str, Any] | None = None, learns_in: int = 0,
                 **defaults: Any) -> None: ...


@hookspec
def register_models(register: Register) -> None:
    """Register segmentation models.

    Call `register(name, build, description=..., params={...}, learns_in=E, **defaults)`
    once per model:

    - `build(input_size=S, **params) -> keras.Model` maps an (S, S, 1) float image in [0, 1]
      to an (S, S, 1) map of logits (or of probabilities when `logits=False`); `params` are
      the model's own hyperparameters, given as `params={...}` defaults and overridable with
      `--param key=value`. A model may give a second output of shape (1,): a logit of "this
      image has salt", trained with BCE as deep supervision (weight `has_salt_weight`);
      only the first output predicts, so it must already use the second.
    - defaults (all optional) are training settings, declared with their types, allowed
      values and help in `kagglesalt.model.settings.TrainSettings` (`kagglesalt models NAME`
      shows a model's): `input_size`, `input_mode`, `logits`, `loss`, `lovasz`,
      `lovasz_share`, `epochs`, `batch_size`, `learning_rate`, `schedule`, `snapshots`,
      `augment`, ... A default that is not allowed refuses the plugin at registration.
    - `learns_in` (optional): about how many epochs the model needs before it finds salt at
      all (fewer scored below a submission of empty masks, as measured); a time budget that
      buys fewer is said before training, with what would help.

    The return value is ignored.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands to the `kagglesalt` group `cli` (call `cli.command()` or
    `cli.add_command(...)`). The return value is ignored."""
