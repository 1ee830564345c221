"""A competition workspace: the folders where it keeps its data, runs and submissions.

The records in them have one owner each: `runs` (a run folder: config, folds, arrays,
scores; their typed records in `records`), `submissions` (the submissions folder: CSVs,
ensemble records, the ledger and its upload journal); `locks` keeps two processes from
writing the same one; `pseudo` makes a run's or ensemble's test predictions into training
images."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kagglesalt.errors import KaggleSaltError

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]*")


@dataclass(frozen=True)
class Workspace:
    data_dir: Path = Path("data")
    runs_dir: Path = Path("runs")
    submissions_dir: Path = Path("submissions")


def check_name(name: str, what: str) -> str:
    """A run or submission name: one folder or file name that stays inside its folder
    (letters, digits and _ . + = -, not starting with a dot); else one line saying so."""
    if not _NAME.fullmatch(name) or name.endswith(".") or len(name) > 200:
        raise KaggleSaltError(f"{what} name {name!r}: use letters, digits and _ . + = - "
                              "(no '/', no leading dot), so it stays one folder in its place")
    return name


# A name may say what it names: "runs/NAME" a run, "submissions/NAME" (or NAME.csv) an
# ensemble submission, for the names that are both.
KIND_PREFIXES = {"runs/": "run", "submissions/": "ensemble"}


def strip_kind(name: str) -> tuple[str | None, str]:
    """("run" or "ensemble" or None, the bare name) of a name as a user gives it."""
    for prefix, kind in KIND_PREFIXES.items():
        if name.startswith(prefix):
            bare = name[len(prefix):]
            return kind, bare[:-4] if kind == "ensemble" and bare.endswith(".csv") else bare
    if name.endswith(".csv"):
        return "ensemble", name[:-4]
    return None, name


@dataclass(frozen=True)
class Resolved:
    """What a run-or-ensemble name resolved to: a run folder or an ensemble's record, and
    a line saying so when the name was both."""

    kind: str  # "run" or "ensemble"
    name: str
    path: Path  # the run folder, or the ensemble's .json record
    note: str | None = None


def resolve(ws: Workspace, name: str) -> Resolved:
    """The run or ensemble submission `name` names. A name that is both is the ensemble
    (the newer and larger thing, as `report` and `predict` have always read it), with a
    note naming the way to the run: "runs/NAME"."""
    from kagglesalt.workspace import runs, submissions

    kind, bare = strip_kind(name)
    check_name(bare, "run or ensemble")
    record = Path(ws.submissions_dir) / f"{bare}.json"
    is_ensemble = kind != "run" and submissions.read_ensemble(record) is not None
    if kind == "ensemble" and not is_ensemble:
        raise KaggleSaltError(f"no ensemble submission '{bare}' in {ws.submissions_dir}: "
                              "`kagglesalt ensemble` makes one")
    if is_ensemble:
        both = kind is None and runs.Run(Path(ws.runs_dir) / bare).started
        note = (f"{bare} is both a run and an ensemble: using the ensemble; runs/{bare} "
                "names the run") if both else None
        return Resolved("ensemble", bare, record, note)
    return Resolved("run", bare, runs.open_run(ws.runs_dir, bare).path)
