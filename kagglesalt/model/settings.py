"""The training settings, declared once.

Each field of `TrainSettings` carries its type, default, allowed values and help. From that
one declaration come the `cv` command's options (`cli/train_commands.py`), the check of a
model plugin's defaults when it registers (plugins.py), the check of what a notebook passes, and the
`settings` block of a run's `config.json`. A new setting is one field here and its use.
"""

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kagglesalt.errors import KaggleSaltError, option
from kagglesalt.model.augment import Augment

# Each --loss choice as the pixel losses of its stages, in order.
LOSS_STAGES = {"bce": ("bce",), "bce_dice": ("bce_dice",), "lovasz": ("lovasz",),
               "bce+lovasz": ("bce_dice", "lovasz")}
LOSSES = tuple(LOSS_STAGES)
LOVASZ = ("relu", "elu", "symmetric")
INPUT_MODES = ("resize", "pad")
SCHEDULES = ("plateau", "cosine")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
_KIND_NAMES = {int: "an integer", float: "a number", str: "text"}


def setting(default: Any, help: str, *, choices: tuple = (), minimum: float | None = None,
            maximum: float | None = None, above: float | None = None, flag: str | None = "",
            metavar: str | None = None) -> Any:
    """A declared setting. `flag` is the cv option ("" derives it from the name, None means
    only a model plugin sets it); `above` is an exclusive lower bound."""
    metadata = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum,
                "above": above, "flag": flag, "metavar": metavar}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides how a fold is trained (recorded in config.json)."""

    input_size: int = setting(128, "side of the square model input", minimum=32, flag=None)
    input_mode: str = setting("resize", "101 -> model size by resizing or reflect-padding",
                              choices=INPUT_MODES)
    logits: bool = setting(True, "the model outputs logits (else probabilities)", flag=None)
    loss: str = setting("bce_dice", "loss, or the two-stage bce+lovasz schedule",
                        choices=LOSSES)
    lovasz: str = setting("relu", "Lovász hinge of relu(errors), of elu(errors)+1, or "
                          "symmetric (the elu one also on -logits, 1-mask: every pixel of an "
                          "empty mask gets a gradient, not only its highest)",
                          choices=LOVASZ)
    lovasz_share: float = setting(1 / 3, "share of the epochs for the Lovász stage of "
                                  "bce+lovasz", above=0.0, maximum=0.95)
    epochs: int = setting(30, "epochs per fold", minimum=1)
    batch_size: int = setting(32, "images per training step", minimum=1)
    learning_rate: float = setting(1e-3, "Adam learning rate (a later stage starts at half)",
                                   above=0.0, flag="--lr")
    schedule: str = setting("plateau", "learning-rate schedule: halve on a plateau of the "
                            "validation score, or cosine decay per stage", choices=SCHEDULES)
    snapshots: int = setting(0, "0: keep the best epoch's weights; N: run the last stage as "
                             "N cosine cycles and average the N cycle-end snapshots "
                             "(needs --schedule cosine)", minimum=0)
    validate_every: int = setting(1, "score the held-out images every N epochs (and at the "
                                  "end of each stage and cycle); above 1 only with snapshots, "
                                  "since the best epoch is chosen by that score", minimum=1)
    patience: int = setting(10, "epochs without a better validation score before stopping "
                            "(best-epoch mode only)", minimum=1)
    has_salt_weight: float = setting(0.5, "weight of the 'has salt' BCE for models with an "
                                     "image-level second output", minimum=0.0)
    precision: str = setting("float32", "float32, mixed_bfloat16 (bfloat16 compute, float32 "
                             "weights), mixed_float16 (float16 compute, the loss scaled), or "
                             "auto: mixed_bfloat16 on a GPU of compute capability 8.0 or "
                             "more, mixed_float16 on an older one (T4, V100, P100), float32 "
                             "on a CPU", choices=PRECISIONS)
    seed: int = setting(42, "seed of folds, initial weights, order and augmentation")
    augment: dict = setting({}, "augmentation, e.g. crop_scale=0.2 shift=0.13 "
                            "brightness=0.1 contrast=0.2 (fractions; horizontal flips are "
                            "always on)", flag="--augment",
                            metavar="KEY=VALUE")
    params: dict = setting({}, "a model parameter, e.g. start_filters=32", flag="--param",
                           metavar="KEY=VALUE")


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainSettings)}


def flag(f: dataclasses.Field) -> str | None:
    """The `cv` option of a setting, or None for a setting only a model plugin gives."""
    given = f.metadata["flag"]
    return given if given != "" else "--" + f.name.replace("_", "-")


def default(name: str) -> Any:
    """The declared default of setting `name`."""
    f = FIELDS[name]
    factory: Any = f.default_factory  # a field without a default has a factory
    return factory() if f.default is dataclasses.MISSING else f.default


def check(name: str, value: Any) -> Any:
    """`value` as the declared type of setting `name`, or ValueError saying what is allowed."""
    if name not in FIELDS:
        raise ValueError(f"no setting '{name}': the settings are {', '.join(FIELDS)}")
    f, meta = FIELDS[name], FIELDS[name].metadata
    kind: Any = f.type  # the class itself: this module's annotations are not strings
    if kind is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be a mapping of names to values, not {value!r}")
        return _check_augment(value) if name == "augment" else dict(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return value
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float)
                                       and not value.is_integer()):
            raise TypeError
        converted = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {_KIND_NAMES[kind]}, not {value!r}") from None
    if meta["choices"] and converted not in meta["choices"]:
        raise ValueError(f"{name} must be one of {', '.join(meta['choices'])}, "
                         f"not {converted!r}")
    if meta["minimum"] is not None and converted < meta["minimum"]:
        raise ValueError(f"{name} must be at least {meta['minimum']}, not {converted}")
    if meta["above"] is not None and converted <= meta["above"]:
        raise ValueError(f"{name} must be above {meta['above']}, not {converted}")
    if meta["maximum"] is not None and converted > meta["maximum"]:
        raise ValueError(f"{name} must be at most {meta['maximum']}, not {converted}")
    return converted


def _check_augment(values: dict) -> dict:
    known = {f.name: f for f in dataclasses.fields(Augment) if f.name != "hflip"}
    out = {}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"no augmentation '{key}': choose from {', '.join(known)}")
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not 0 <= value <= 1:
            raise ValueError(f"augmentation {key} must be a number from 0 to 1, not {value!r}")
        out[key] = float(value)
    return out


def key_values(pairs: Sequence[str]) -> dict[str, Any]:
    """`key=value` texts (from --param, --augment, a bench's --set) as a dict, values read
    as JSON where they parse (numbers, true, {...}), else kept as text. ValueError names a
    text without '='."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"'{pair}' is not key=value")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def resolve(model_defaults: dict[str, Any], overrides: dict[str, Any],
            model_params: dict[str, Any] | None = None) -> TrainSettings:
    """The declared defaults, then the model's, then what the user gave (None: not given).

    Model parameters and augmentations given by the user are merged into the model's.
    Raises KaggleSaltError naming the first setting that is not allowed."""
    values: dict[str, Any] = {"params": dict(model_params or {})}
    for source in (model_defaults, {k: v for k, v in overrides.items() if v is not None}):
        for name, value in source.items():
            try:
                value = check(name, value)
            except ValueError as e:
                raise KaggleSaltError(str(e)) from None
            values[name] = {**values.get(name, {}), **value} if isinstance(value, dict) \
                else value
    settings = TrainSettings(**values)
    if settings.snapshots and settings.schedule != "cosine":
        raise KaggleSaltError("snapshots need the cosine schedule: add "
                              f"{option('schedule', 'cosine')}, or {option('snapshots', 0)}")
    if settings.validate_every > 1 and not settings.snapshots:
        raise KaggleSaltError("validating every few epochs needs snapshots (the best epoch is "
                              f"chosen by validation): add {option('snapshots', 'N')}, or "
                              f"{option('validate_every', 1)}")
    if settings.input_mode == "pad" and settings.input_size < 101:
        raise KaggleSaltError(f"pad mode needs an input of at least 101, not "
                              f"{settings.input_size}")
    return settings


def as_config(settings: TrainSettings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def from_config(values: dict[str, Any]) -> TrainSettings:
    """Settings read back from a config.json; settings added since take their defaults."""
    return TrainSettings(**{k: v for k, v in values.items() if k in FIELDS})
