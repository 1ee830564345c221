"""What a model plugin registers: a named builder of a Keras model and its training
defaults. Kept apart from the plugin registry (plugins.py), so that training takes a
`ModelSpec` without loading plugins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kagglesalt import settings
from kagglesalt.errors import KaggleSaltError


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and how to train it by default."""

    name: str
    build: Callable[..., Any]
    description: str
    source: str
    params: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    def default(self, key: str) -> Any:
        """The model's default for training setting `key`, or the declared one."""
        return self.defaults[key] if key in self.defaults else settings.default(key)

    def training_settings(self, overrides: dict[str, Any] | None = None
                          ) -> settings.TrainSettings:
        """The training settings of this model, with `overrides` (None values: not given);
        KaggleSaltError names the first that is not allowed."""
        overrides = dict(overrides or {})
        unknown = set(overrides.get("params") or {}) - set(self.params)
        if unknown:
            raise KaggleSaltError(f"model {self.name} has no parameter {sorted(unknown)[0]}: "
                                  f"it takes {', '.join(sorted(self.params)) or 'none'}")
        return settings.resolve(self.defaults, overrides, self.params)
