"""The records of a run folder, as typed values: `config.json` (`RunConfig`, with its
`DataRecord`), `scores.json` (`RunScores`) and each fold's `done.json` (`FoldSummary`).

Every record loads through `from_json`, which takes the fields it knows (records of earlier
versions load; fields added since take their defaults) and refuses a value of the wrong kind
with TypeError, so one damaged value makes the record damaged in one line (`runs.Run`
says so) instead of a traceback wherever the value is used.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kagglesalt.model.results import FoldResult


@dataclass(frozen=True)
class FoldSummary:
    """A trained fold, as `fold_<k>/done.json` records it."""

    fold: int
    score: float  # competition score of its held-out images, TTA, at its best threshold
    threshold: float
    best_epoch: int
    epochs_run: int
    models: int = 1  # the best epoch's, or one per snapshot
    seconds: float = 0.0
    train_images: int = 0
    valid_images: int = 0

    @classmethod
    def of(cls, result: FoldResult) -> FoldSummary:
        return cls(result.fold, result.score, result.threshold, result.best_epoch,
                   len(result.history), len(result.models), round(result.seconds, 1),
                   result.train_images, len(result.oof))

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> FoldSummary:
        return cls(**_known(cls, values))


def _known(cls, values: dict[str, Any]) -> dict[str, Any]:
    """The fields of record type `cls` in `values`, each of its declared kind (TypeError
    otherwise: one wrong value makes the record damaged, not a traceback later)."""
    if not isinstance(values, dict):
        raise TypeError(f"a {cls.__name__} is a mapping")
    fields = {f.name: f.type for f in dataclasses.fields(cls)}
    known = {k: v for k, v in values.items() if k in fields}
    for name, value in known.items():
        if not _of_kind(value, str(fields[name])):
            raise TypeError(f"{name} is {value!r}")
    return known


_KINDS = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
          "dict": (dict,), "list": (list,)}


def _of_kind(value: Any, annotation: str) -> bool:
    """Whether `value` read from JSON fits a field annotated `annotation` ("int",
    "float | None", "dict[str, Any]", ...); record types of their own are checked by them."""
    for part in annotation.split("|"):
        part = part.strip()
        if part == "None" and value is None:
            return True
        kinds = _KINDS.get(part.split("[")[0])
        if kinds is None:
            return True
        if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
            return True
    return False


@dataclass(frozen=True)
class DataRecord:
    """The data a run was trained on: its folder, sizes and fingerprints."""

    dir: str
    train: int
    test: int
    fingerprint: str
    test_fingerprint: str = ""


@dataclass(frozen=True)
class RunConfig:
    """`config.json`: everything needed to rerun a run, and what it ran on. Records of
    earlier versions load (fields added since take their defaults)."""

    name: str
    model: str
    folds: int
    seed: int
    settings: dict[str, Any]  # settings.as_config of the TrainSettings trained with
    data: DataRecord
    model_source: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    command: str = ""
    created: str = ""
    device: str = ""  # what Keras trained on, in words
    rates: dict[str, Any] | None = None  # budget.Rates measured before training
    pseudo: dict[str, Any] | None = None  # pseudo.PseudoLabels.record(): what else trained
    budget: dict[str, Any] | None = None  # budget.Budget, for runs given --minutes

    def identity(self) -> dict[str, Any]:
        """What must match for a rerun to resume this run. The data is its content (sizes
        and fingerprints), not its folder: a data folder moved elsewhere is the same data."""
        data = {k: v for k, v in dataclasses.asdict(self.data).items() if k != "dir"}
        return {"model": self.model, "folds": self.folds, "settings": self.settings,
                "data": data, "pseudo": self.pseudo}

    def differences(self, other: RunConfig) -> list[str]:
        """What differs from `other` in words: the model, folds, data, or the settings by
        name with both values."""
        mine, theirs = self.identity(), other.identity()
        out = [key if key != "pseudo" else "pseudo-labels" for key in
               ("model", "folds", "data", "pseudo") if mine[key] != theirs[key]]
        for key in sorted(set(mine["settings"]) | set(theirs["settings"])):
            if mine["settings"].get(key) != theirs["settings"].get(key):
                out.append(f"{key} ({json.dumps(theirs['settings'].get(key))} there, "
                           f"{json.dumps(mine['settings'].get(key))} here)")
        return out

    def train_settings(self):
        from kagglesalt.model.settings import from_config

        return from_config(self.settings)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> RunConfig:
        values = _known(cls, values)
        values["data"] = DataRecord(**_known(DataRecord, values.get("data") or {}))
        if values["folds"] < 2:
            raise ValueError(f"folds is {values['folds']}")
        return cls(**values)


@dataclass(frozen=True)
class RunScores:
    """`scores.json`: the OOF score at the threshold chosen on it, the threshold curve and
    the post-processing chosen on OOF. Fold summaries are each fold's own `done.json`."""

    score: float
    threshold: float
    curve: dict[str, list[float]]
    postprocess: dict[str, int] = field(default_factory=dict)  # min_component, min_area
    postprocess_score: float | None = None
    empty_score: float | None = None  # what empty masks score on the same images

    def warning(self) -> str | None:
        """Said when the OOF score does not beat a submission of empty masks."""
        from kagglesalt.competition.metric import below_empty

        return below_empty(self.score, self.empty_score)

    def to_json(self) -> dict[str, Any]:
        post: dict[str, float] = dict(self.postprocess)
        if self.postprocess_score is not None:
            post["score"] = self.postprocess_score
        oof: dict[str, float] = {"score": self.score, "threshold": self.threshold}
        if self.empty_score is not None:
            oof["empty_score"] = self.empty_score
        return {"oof": oof, "postprocess": post, "curve": self.curve}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> RunScores:
        post = dict(values.get("postprocess") or {})
        oof = values["oof"]
        return cls(**_known(cls, {"score": oof["score"], "threshold": oof["threshold"],
                                  "curve": values.get("curve", {}),
                                  "postprocess": {k: int(v) for k, v in post.items()
                                                  if k != "score"},
                                  "postprocess_score": post.get("score"),
                                  "empty_score": oof.get("empty_score")}))
