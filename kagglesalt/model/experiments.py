"""Experiment files: a `cv` run written down, to run again or to vary.

An experiment is a TOML file whose keys are the run's (`model`, `folds`, `name`, `minutes`,
`plugins_dir`, `seed`) and any training setting by its declared name (`settings.py`), with
`[params]` and `[augment]` tables:

    model = "unet_lite"
    folds = 3
    minutes = 45
    loss = "bce+lovasz"
    lovasz = "symmetric"

    [augment]
    crop_scale = 0.1

The same keys come from a finished run (`from_run`: its model, folds and every setting it
trained with) and from `--set key=value` (`params.width=3` and `augment.brightness=0.1`
reach into the tables). What the command line gives overrides the file or run, and a key
that is neither a run key nor a setting is one line naming it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from kagglesalt.errors import KaggleSaltError, option
from kagglesalt.model import settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# The run's own keys, with the check of each value.
RUN_KEYS = {
    "model": (lambda v: isinstance(v, str) and v, "a model name"),
    "folds": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2,
              "an integer of at least 2"),
    "name": (lambda v: isinstance(v, str) and v, "a run name"),
    "minutes": (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v > 0,
                "a number of minutes above 0"),
    "plugins_dir": (lambda v: isinstance(v, str) and v, "a folder"),
}
TABLES = ("params", "augment")


def read(path: str | os.PathLike) -> dict[str, Any]:
    """The experiment in a TOML file, checked."""
    try:
        values = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KaggleSaltError(f"no experiment file {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise KaggleSaltError(f"{path} is not valid TOML: {e}") from None
    return check(values, str(path))


def check(values: dict[str, Any], source: str) -> dict[str, Any]:
    """`values` with every key known and every setting of its declared kind; KaggleSaltError
    names the first that is not, and where it came from."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in RUN_KEYS:
            fits, words = RUN_KEYS[key]
            if not fits(value):
                raise KaggleSaltError(f"{source}: {key} must be {words}, not {value!r}")
            out[key] = value
            continue
        if key not in settings.FIELDS:
            raise KaggleSaltError(f"{source}: no setting '{key}': the keys are "
                                  f"{', '.join(RUN_KEYS)} and the settings "
                                  f"{', '.join(settings.FIELDS)}")
        if key == "params":
            if not isinstance(value, dict):
                raise KaggleSaltError(f"{source}: params must be a table of model "
                                      "parameters")
            out[key] = dict(value)
            continue
        try:
            out[key] = settings.check(key, value)
        except ValueError as e:
            raise KaggleSaltError(f"{source}: {e}") from None
    return out


def from_run(run) -> dict[str, Any]:
    """A finished or started run as an experiment: its model, folds and settings."""
    config = run.config
    values = {"model": config.model, "folds": config.folds, **config.settings}
    if config.budget:  # a budget chose the epochs; the variation keeps the budget instead
        values.pop("epochs", None)
        values["minutes"] = config.budget["minutes"]
    return check(values, f"run {run.name}")


def with_sets(values: dict[str, Any], pairs: dict[str, Any], source: str = option("sets")
              ) -> dict[str, Any]:
    """`values` changed by KEY=VALUE pairs (`params.X` and `augment.X` set one entry)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for key, value in pairs.items():
        table, dot, entry = key.partition(".")
        if dot and table in TABLES:
            out[table] = {**out.get(table, {}), entry: value}
            out[table] = check({table: out[table]}, source)[table]
        else:
            out.update(check({key: value}, source))
    return out


def merge(base: dict[str, Any], sets: dict[str, Any], given: dict[str, Any]
          ) -> dict[str, Any]:
    """An experiment (a file's or a run's) changed by `--set` pairs, then by what the
    command line gave: a number of epochs given there replaces a budget in minutes and the
    other way round; --param and --augment add to the tables."""
    base = dict(base)
    if "epochs" in given:
        base.pop("minutes", None)
    if "minutes" in given:
        base.pop("epochs", None)
    values = with_sets(base, sets)
    given = dict(given)
    for table in TABLES:
        if table in given:
            given[table] = {**values.get(table, {}), **given[table]}
    values.update(given)
    if values.get("minutes") is not None and values.get("epochs") is not None:
        raise KaggleSaltError("the experiment has both epochs and minutes: keep one (minutes "
                              "choose the epochs that fit the budget on this machine)")
    return values


def to_toml(values: dict[str, Any]) -> str:
    """An experiment as TOML text (the run keys and settings, then the tables)."""
    import json

    lines = [f"{key} = {json.dumps(value)}" for key, value in values.items()
             if not isinstance(value, dict)]
    for table in TABLES:
        if values.get(table):
            lines += ["", f"[{table}]"]
            lines += [f"{k} = {json.dumps(v)}" for k, v in values[table].items()]
    return "\n".join(lines) + "\n"
