"""Sending submissions to Kaggle and bringing their scores back into the ledger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kagglesalt import data, kaggle
from kagglesalt.competition import submission
from kagglesalt.errors import KaggleSaltError, option
from kagglesalt.workspace import Workspace, locks, submissions


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
        upload = ledger.begin_upload(path.name, digest, message, force)
        try:
            ref = kaggle.submit(path, message, competition, warn)
        except kaggle.OutcomeUnknown:  # the row stays "uploading" for `refresh` to resolve
            raise
        except KaggleSaltError:  # Kaggle refused it or was not reached: nothing was sent
            upload.roll_back()
            raise
        upload.complete(ref)
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
        ledger.take_kaggle_rows(rows)
    return rows
