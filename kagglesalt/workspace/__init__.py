"""A competition workspace: the folders where it keeps its data, runs and submissions.

The records in them have one owner each: `runs` (a run folder: config, folds, arrays,
scores), `submissions` (the submissions folder: CSVs, ensemble records, the ledger); `locks`
keeps two processes from writing the same one."""

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
