"""Sending submissions to Kaggle and bringing their scores back into the ledger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kagglesalt import data, kaggle, submission, submissions, timestamps
from kagglesalt.errors import KaggleSaltError
from kagglesalt.workspace import Workspace


def submit(ws: Workspace, path: str | os.PathLike | None, message: str, force: bool = False,
           competition: str = kaggle.COMPETITION, warn: kaggle.Warn | None = None
           ) -> tuple[Path, int]:
    """Validate, refuse a duplicate, upload, and record in the ledger; nothing is sent
    before the file has passed every check."""
    path = Path(path) if path else submissions.newest(ws.submissions_dir)
    submission.validate(path, data.sample_submission_ids(ws.data_dir))
    if not force and _made_from_synthetic(path, ws.data_dir):
        raise KaggleSaltError(f"{path.name} was made from the synthetic data set in "
                              f"{ws.data_dir}, so Kaggle would score it near 0: `kagglesalt "
                              "download` fetches the real data (--force submits it anyway)")
    digest = submissions.sha256(path)
    ledger = submissions.Ledger(ws.submissions_dir)
    table = ledger.read()
    sent = table[(table["sha256"] == digest) & (table["kaggle_ref"] != "")]
    if len(sent) and not force:
        raise KaggleSaltError(f"{path.name} was already submitted on {sent['submitted'].iloc[-1]}"
                              f" (Kaggle ref {sent['kaggle_ref'].iloc[-1]}): use --force to "
                              "submit the same file again")
    ref = kaggle.submit(path, message, competition, warn)
    row = {"message": message, "submitted": timestamps.now(), "kaggle_ref": str(ref),
           "status": "pending"}
    mine = table.index[(table["file"] == path.name) & (table["sha256"] == digest)
                       & (table["kaggle_ref"] == "")]
    if len(mine):
        for key, value in row.items():
            table.loc[mine[-1], key] = value
        ledger.write(table)
    else:
        known = table.loc[table["file"] == path.name, "oof_score"]
        ledger.add(file=path.name, sha256=digest, created=timestamps.now(), source="",
                   oof_score=known.iloc[-1] if len(known) else "", **row)
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
    table = submissions.Ledger(ws.submissions_dir).read()
    if len(table):
        by_ref = {str(r["ref"]): r for r in rows}
        for i, ref in table["kaggle_ref"].items():
            if ref in by_ref:
                found = by_ref[ref]
                table.loc[i, "status"] = found["status"]
                table.loc[i, "public_score"] = str(found["public_score"])
                table.loc[i, "private_score"] = str(found["private_score"])
        submissions.Ledger(ws.submissions_dir).write(table)
    return rows
