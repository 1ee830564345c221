"""What a model plugin registers: a named builder of a Keras model and its training
defaults. Kept apart from the plugin registry (plugins.py), so that training takes a
`ModelSpec` without loading plugins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kagglesalt.errors import KaggleSaltError
from kagglesalt.model import settings


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and how to train it by default."""

    name: str
    build: Callable[..., Any]
    description: str
    source: str
    params: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    learns_in: int = 0  # epochs it needs before it finds salt at all (0: not measured)

    def default(self, key: str) -> Any:
        """The model's default for training setting `key`, or the declared one."""
        return self.defaults[key] if key in self.defaults else settings.default(key)

    def training_settings(self, overrides: dict[str, Any] | None = None
                          ) -> settings.TrainSettings:
        """The training settings of this model, with `overrides` (None values: not given);
        KaggleSaltError names the first that is not allowed."""
        overrides = dict(overrides or {})
        given = overrides.get("params") or {}
        unknown = set(given) - set(self.params)
        if unknown:
            raise KaggleSaltError(f"model {self.name} has no parameter {sorted(unknown)[0]}: "
                                  f"it takes {', '.join(sorted(self.params)) or 'none'}")
        for key, value in given.items():
            _check_param(self.name, key, value, self.params[key])
        return settings.resolve(self.defaults, overrides, self.params)


def _check_param(model: str, key: str, value: Any, default: Any) -> None:
    """A parameter of the kind of its default: an integer for an integer (not true or
    false), a number for a number, true or false for a flag, text for text."""
    kinds = [(bool, "true or false", lambda v: isinstance(v, bool)),
             (int, "an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
             (float, "a number",
              lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
             (str, "text", lambda v: isinstance(v, str))]
    for kind, words, fits in kinds:
        if isinstance(default, kind):
            if not fits(value):
                raise KaggleSaltError(f"model {model}: parameter {key} must be {words} "
                                      f"(its default is {default!r}), not {value!r}")
            return
