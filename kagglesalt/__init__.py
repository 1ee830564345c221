"""kagglesalt: train, ensemble and submit models for the TGS Salt Identification Challenge.

The public API is these modules (imported on first use, so that `import kagglesalt` and the
command line stay fast and Keras loads only where a model is built or trained):

- the competition's rules: `rle`, `metric`, `postprocess`, `submission`
- the data folder: `data`, `synth`, `folds`
- models and training: `plugins`, `settings`, `train`, `predict`, `budget`
- the workspace: `runs`, `submissions`
- the commands as functions: `cv`, `ensemble`, `report`, `demo`
"""

import importlib
from types import ModuleType

__version__ = "0.2.0"

__all__ = ["__version__", "budget", "cv", "data", "demo", "ensemble", "folds", "metric",
           "plugins", "postprocess", "predict", "report", "rle", "runs", "settings",
           "submission", "submissions", "synth", "train"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"kagglesalt.{name}")
    raise AttributeError(f"module 'kagglesalt' has no attribute {name!r}")
