"""Where a competition workspace keeps its data, runs and submissions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    data_dir: Path = Path("data")
    runs_dir: Path = Path("runs")
    submissions_dir: Path = Path("submissions")
