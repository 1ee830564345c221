"""The submissions ledger: one row per submission file, what it is and how it scored.

`submissions/ledger.csv`, rewritten atomically on every change, so it is never half written.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pandas as pd

from kagglesalt.atomic import atomic_open
from kagglesalt.errors import KaggleSaltError

COLUMNS = ["file", "sha256", "created", "source", "oof_score", "message", "submitted",
           "kaggle_ref", "status", "public_score", "private_score"]
NAME = "ledger.csv"


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read(submissions_dir: str | os.PathLike) -> pd.DataFrame:
    path = Path(submissions_dir) / NAME
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise KaggleSaltError(f"{path} is damaged ({str(e).strip()}): repair or move it "
                              "aside; a new ledger starts empty") from None
    for column in COLUMNS:
        if column not in table:
            table[column] = ""
    return table[COLUMNS]


def write(submissions_dir: str | os.PathLike, table: pd.DataFrame) -> None:
    with atomic_open(Path(submissions_dir) / NAME, "w", newline="") as f:
        table[COLUMNS].to_csv(f, index=False)


def add(submissions_dir: str | os.PathLike, **row: Any) -> None:
    """Append a row (unknown columns are refused, missing ones left empty)."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown ledger columns {sorted(unknown)}")
    table = read(submissions_dir)
    new = pd.DataFrame([{c: "" if row.get(c) is None else str(row.get(c, "")) for c in COLUMNS}])
    write(submissions_dir, pd.concat([table, new], ignore_index=True))

