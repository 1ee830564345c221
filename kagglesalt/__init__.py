"""kagglesalt: train, ensemble and submit models for the TGS Salt Identification Challenge.

The package is built in layers, each a folder, with the commands on top:

- `competition/`: the competition's rules on numpy alone (`rle`, `metric`, `postprocess`,
  `submission`)
- `data/`: the data folder in the Kaggle layout, the synthetic data set, the folds
- `model/`: settings, the Keras side (inputs, augmentation, losses, a fold's trainer,
  prediction) and the time budget; the only layer that imports Keras
- `workspace/`: the run folders and the submissions folder, each record with one owner
- the commands as functions: `cv`, `ensemble`, `predict`, `report`, `submit`, `demo`
  (`cli/` is their command line); `plugins` + `hookspecs` find the models; `kaggle` and
  `distributed` talk to Kaggle and to Ray.

The names in `__all__` load on first use (so `import kagglesalt` and the command line stay
fast, and Keras loads only where a model is built or trained); the short names of the
most used modules (`kagglesalt.metric`, `kagglesalt.runs`, ...) lead to their place in a
layer.
"""

import importlib
from types import ModuleType

__version__ = "0.3.0"

_WHERE = {
    "competition": "competition", "data": "data", "model": "model", "workspace": "workspace",
    "cv": "cv", "demo": "demo", "ensemble": "ensemble", "plugins": "plugins",
    "predict": "predict", "report": "report", "submit": "submit",
    "rle": "competition.rle", "metric": "competition.metric",
    "postprocess": "competition.postprocess", "submission": "competition.submission",
    "folds": "data.folds", "synth": "data.synth",
    "budget": "model.budget", "settings": "model.settings",
    "runs": "workspace.runs", "submissions": "workspace.submissions",
}

__all__ = ["__version__", *sorted(_WHERE)]


def __getattr__(name: str) -> ModuleType:
    if name in _WHERE:
        return importlib.import_module(f"kagglesalt.{_WHERE[name]}")
    raise AttributeError(f"module 'kagglesalt' has no attribute {name!r}")
