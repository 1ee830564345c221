"""The submissions folder: submission CSVs, the records of ensembles beside them, and the
ledger of every submission. This module is the one that knows its names and formats.

    submissions/<name>.csv     a submission (id,rle_mask)
    submissions/<name>.json    an ensemble's record: members, weights, threshold, OOF score
    submissions/<name>.html    its report
    submissions/ledger.csv     one row per submission file: what it is and how it scored,
                               rewritten atomically on every change, so never half written

The ledger keeps columns and rows it does not know (a user's notes, a newer version's
fields): they are written back as they were read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kagglesalt import timestamps
from kagglesalt.atomic import atomic_open, write_json
from kagglesalt.errors import KaggleSaltError, option

COLUMNS = ["file", "sha256", "created", "source", "oof_score", "message", "submitted",
           "kaggle_ref", "status", "public_score", "private_score"]
LEDGER = "ledger.csv"
UPLOADING = "uploading"  # a journal row: written before the upload, completed after it


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def newest(submissions_dir: str | os.PathLike) -> Path:
    """The most recently written submission CSV in `submissions_dir`."""
    files = [f for f in Path(submissions_dir).glob("*.csv") if f.name != LEDGER]
    if not files:
        raise KaggleSaltError(f"no submission in {submissions_dir}: make one with "
                              "`kagglesalt ensemble`")
    return max(files, key=lambda p: p.stat().st_mtime)


@dataclass(frozen=True)
class Ledger:
    """`submissions/ledger.csv`."""

    folder: Path

    @property
    def path(self) -> Path:
        return Path(self.folder) / LEDGER

    def read(self) -> pd.DataFrame:
        """Every row, the known columns first, then any others as they were."""
        if not self.path.exists():
            return pd.DataFrame(columns=COLUMNS)
        problem = self._damage()
        if problem:  # refused as it is: a row cut short may have lost its Kaggle reference
            raise KaggleSaltError(f"{self.path} is damaged ({problem}): repair it or move it "
                                  "aside (a new ledger starts empty); it was left as it is")
        table = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        for column in COLUMNS:
            if column not in table:
                table[column] = ""
        return table[COLUMNS + [c for c in table.columns if c not in COLUMNS]]

    def _damage(self) -> str | None:
        """What is wrong with the file, in words: every row of a ledger this module wrote
        has the header's fields and ends its line, so a row cut short is seen."""
        import csv
        import io

        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return "not text"
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if not rows or "file" not in rows[0]:
            return "no header"
        if not text.endswith("\n"):
            return f"row {len(rows) - 1} is cut short: the file ends inside it"
        for number, row in enumerate(rows[1:], start=1):
            if len(row) != len(rows[0]):
                return f"row {number} has {len(row)} of {len(rows[0])} fields"
        return None

    def write(self, table: pd.DataFrame) -> None:
        with atomic_open(self.path, "w", newline="") as f:
            table.to_csv(f, index=False)

    def add(self, **row: Any) -> None:
        """Append a row (unknown columns are refused, missing ones left empty)."""
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown ledger columns {sorted(unknown)}")
        table = self.read()
        new = pd.DataFrame([{c: "" if row.get(c) is None else str(row.get(c, ""))
                             for c in table.columns}])
        self.write(pd.concat([table, new], ignore_index=True))


    # The upload journal: the caller holds the submissions folder's lock throughout.

    def begin_upload(self, file: str, digest: str, message: str, force: bool = False
                     ) -> Upload:
        """Refuse a file already sent (or whose upload was cut short, until `submissions`
        resolves it) unless `force`; else write its row marked "uploading", before anything
        is sent, and return the upload to complete or roll back."""
        table = self.read()
        same = table[table["sha256"] == digest]
        sent = same[same["kaggle_ref"] != ""]
        if len(sent) and not force:
            raise KaggleSaltError(f"{file} was already submitted on "
                                  f"{sent['submitted'].iloc[-1]} (Kaggle ref "
                                  f"{sent['kaggle_ref'].iloc[-1]}): use "
                                  f"{option('force', True)} to submit the same file again")
        cut = same["status"] == UPLOADING
        if cut.any() and not force:
            raise KaggleSaltError(f"an upload of {file} was cut short on "
                                  f"{same.loc[cut, 'submitted'].iloc[-1]}: `kagglesalt "
                                  "submissions` finds out whether Kaggle has it "
                                  f"({option('force', True)} submits it again)")
        journal = {"message": message, "submitted": timestamps.now(), "status": UPLOADING}
        mine = table.index[(table["file"] == file) & (table["sha256"] == digest)
                           & (table["kaggle_ref"] == "") & (table["status"] != UPLOADING)]
        if len(mine):
            row = mine[-1]
        else:
            known = table.loc[table["file"] == file, "oof_score"]
            table = pd.concat([table, pd.DataFrame([{c: "" for c in table.columns}])],
                              ignore_index=True)
            row = table.index[-1]
            journal.update(file=file, sha256=digest, created=timestamps.now(),
                           oof_score=known.iloc[-1] if len(known) else "")
        for key, value in journal.items():
            table.loc[row, key] = value
        before = self.read()
        self.write(table)  # the journal row, before anything is sent
        return Upload(self, table, row, before)

    def take_kaggle_rows(self, rows: list[dict[str, Any]]) -> None:
        """Kaggle's list of submissions into the ledger: each cut-short upload resolved (by
        its file and message, to a Kaggle submission no row has yet, else "not uploaded"),
        then every row with a Kaggle reference given its status and scores."""
        table = self.read()
        if not len(table):
            return
        by_ref = {str(r["ref"]): r for r in rows}
        known_refs = set(table["kaggle_ref"])
        for i in table.index[table["status"] == UPLOADING]:
            match = [r for r in rows if r["file"] == table.loc[i, "file"]
                     and r["description"] == table.loc[i, "message"]
                     and str(r["ref"]) not in known_refs]
            if match:
                table.loc[i, "kaggle_ref"] = str(match[-1]["ref"])
                known_refs.add(str(match[-1]["ref"]))
            else:
                table.loc[i, "status"] = "not uploaded"
        for i, ref in table["kaggle_ref"].items():
            if ref in by_ref:
                found = by_ref[ref]
                table.loc[i, "status"] = found["status"]
                table.loc[i, "public_score"] = str(found["public_score"])
                table.loc[i, "private_score"] = str(found["private_score"])
        self.write(table)


@dataclass
class Upload:
    """An upload's journal row, written; `complete` it with Kaggle's reference, or
    `roll_back` when nothing was sent."""

    ledger: Ledger
    table: pd.DataFrame
    row: Any
    before: pd.DataFrame

    def complete(self, ref: int) -> None:
        self.table.loc[self.row, "kaggle_ref"] = str(ref)
        self.table.loc[self.row, "status"] = "pending"
        self.ledger.write(self.table)

    def roll_back(self) -> None:
        self.ledger.write(self.before)


@dataclass(frozen=True)
class EnsembleRecord:
    """`submissions/<name>.json` beside `<name>.csv`: what an ensemble submission is made of
    and how it scored out of fold."""

    submission: str  # the CSV's file name
    members: list[dict[str, Any]]  # {"name", "oof_score", "weight"} per run
    oof_score: float  # after post-processing
    threshold: float
    score_before_postprocess: float
    postprocess: dict[str, int]  # min_component, min_area
    created: str
    curve: dict[str, list[float]]  # the threshold search on the ensemble's OOF
    data_source: str = ""  # "kaggle", "synthetic" or "" (unknown)

    @property
    def weights(self) -> dict[str, float]:
        return {m["name"]: m["weight"] for m in self.members}


def write_ensemble(csv_path: str | os.PathLike, record: EnsembleRecord) -> Path:
    path = Path(csv_path).with_suffix(".json")
    write_json(path, dataclasses.asdict(record))
    return path


def read_ensemble(csv_path: str | os.PathLike) -> EnsembleRecord | None:
    """The record of an ensemble submission (by its .csv or .json path), None if it has none."""
    path = Path(csv_path).with_suffix(".json")
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise KaggleSaltError(f"{path} is damaged: delete it, and make the submission again "
                              "with `kagglesalt ensemble`") from None
    known = {f.name for f in dataclasses.fields(EnsembleRecord)}
    try:
        return EnsembleRecord(**{k: v for k, v in values.items() if k in known})
    except TypeError:
        raise KaggleSaltError(f"{path} is damaged (fields missing): delete it, and make the "
                              "submission again with `kagglesalt ensemble`") from None


def require_ensemble(csv_path: str | os.PathLike) -> EnsembleRecord:
    """The record of an ensemble submission that must have one."""
    record = read_ensemble(csv_path)
    if record is None:
        raise KaggleSaltError(f"{Path(csv_path).with_suffix('.json')} is missing: make the "
                              "submission again with `kagglesalt ensemble`")
    return record


def ensemble_records(submissions_dir: str | os.PathLike) -> list[Path]:
    """The .json records of ensemble submissions, oldest first."""
    folder = Path(submissions_dir)
    found = [p for p in folder.glob("*.json") if p.with_suffix(".csv").exists()] \
        if folder.is_dir() else []
    return sorted(found, key=lambda p: p.stat().st_mtime)
