"""Sending submissions to Kaggle and bringing their scores back into the ledger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from kagglesalt import data, kaggle, timestamps
from kagglesalt.competition import submission
from kagglesalt.errors import KaggleSaltError, option
from kagglesalt.workspace import Workspace, locks, submissions

UPLOADING = "uploading"  # a journal row: written before the upload, completed after it


def submit_file(ws: Workspace, path: str | os.PathLike | None, message: str, force: bool = False,
           competition: str = kaggle.COMPETITION, warn: kaggle.Warn | None = None
           ) -> tuple[Path, int]:
    """Validate, refuse a duplicate, upload, and record in the ledger; nothing is sent
    before the file has passed every check.

    The ledger is a journal: under the submissions folder's lock, a row marked "uploading"
    is written before the upload and completed with Kaggle's reference after it, so a
    crash in between leaves a row that `refresh` resolves from Kaggle's list, and a
    second submit of the same file (at once, or after such a crash) is refused."""
    path = Path(path) if path else submissions.newest(ws.submissions_dir)
    submission.validate(path, data.sample_submission_ids(ws.data_dir))
    if not force and _made_from_synthetic(path, ws.data_dir):
        raise KaggleSaltError(f"{path.name} was made from the synthetic data set in "
                              f"{ws.data_dir}, so Kaggle would score it near 0: `kagglesalt "
                              "download` fetches the real data "
                              f"({option('force', True)} submits it anyway)")
    digest = submissions.sha256(path)
    ledger = submissions.Ledger(ws.submissions_dir)
    with locks.holding(ws.submissions_dir, "the submissions folder", locks.SHORT_WAIT, warn):
        table = ledger.read()
        same = table[table["sha256"] == digest]
        sent = same[same["kaggle_ref"] != ""]
        if len(sent) and not force:
            raise KaggleSaltError(f"{path.name} was already submitted on "
                                  f"{sent['submitted'].iloc[-1]} (Kaggle ref "
                                  f"{sent['kaggle_ref'].iloc[-1]}): use {option('force', True)} to "
                                  "submit the "
                                  "same file again")
        if (same["status"] == UPLOADING).any() and not force:
            raise KaggleSaltError(f"an upload of {path.name} was cut short on "
                                  f"{same.loc[same['status'] == UPLOADING, 'submitted'].iloc[-1]}"
                                  ": `kagglesalt submissions` finds out whether Kaggle has it "
                                  f"({option('force', True)} submits it again)")
        journal = {"message": message, "submitted": timestamps.now(), "status": UPLOADING}
        mine = table.index[(table["file"] == path.name) & (table["sha256"] == digest)
                           & (table["kaggle_ref"] == "") & (table["status"] != UPLOADING)]
        if len(mine):
            row = mine[-1]
        else:
            known = table.loc[table["file"] == path.name, "oof_score"]
            table = pd.concat([table, pd.DataFrame([{c: "" for c in table.columns}])],
                              ignore_index=True)
            row = table.index[-1]
            journal.update(file=path.name, sha256=digest, created=timestamps.now(),
                           oof_score=known.iloc[-1] if len(known) else "")
        for key, value in journal.items():
            table.loc[row, key] = value
        before = ledger.read()
        ledger.write(table)  # the journal row, before anything is sent
        try:
            ref = kaggle.submit(path, message, competition, warn)
        except kaggle.OutcomeUnknown:  # the row stays "uploading" for `refresh` to resolve
            raise
        except KaggleSaltError:  # Kaggle refused it or was not reached: nothing was sent
            ledger.write(before)
            raise
        table.loc[row, "kaggle_ref"], table.loc[row, "status"] = str(ref), "pending"
        ledger.write(table)
    return path, ref


def _made_from_synthetic(path: Path, data_dir: Path) -> bool:
    """The ensemble record beside the file says which data it was made from; a file with no
    record is judged by the data folder it is validated against."""

    record = submissions.read_ensemble(path)
    if record is None:
        return data.is_synthetic(data_dir)
    return record.data_source == "synthetic"


def refresh(ws: Workspace, competition: str = kaggle.COMPETITION,
            warn: kaggle.Warn | None = None) -> list[dict[str, Any]]:
    """The competition's submissions; their status and scores are written into the ledger."""
    rows = kaggle.submissions(competition, warn)
    ledger = submissions.Ledger(ws.submissions_dir)
    with locks.holding(ws.submissions_dir, "the submissions folder", locks.SHORT_WAIT, warn):
        table = ledger.read()
        if not len(table):
            return rows
        by_ref = {str(r["ref"]): r for r in rows}
        known_refs = set(table["kaggle_ref"])
        for i in table.index[table["status"] == UPLOADING]:
            # an upload cut short: Kaggle has it if a submission of that file and message
            # is not yet in the ledger
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
        ledger.write(table)
    return rows
