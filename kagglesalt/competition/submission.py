"""Submission CSVs: write them atomically, read and validate them, score them against truth."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kagglesalt.atomic import atomic_open
from kagglesalt.competition import metric, rle
from kagglesalt.errors import KaggleSaltError

COLUMNS = ["id", "rle_mask"]


def write(path: str | os.PathLike, ids: Sequence[str], masks: np.ndarray) -> Path:
    """Write `id,rle_mask` rows for bool masks (N, 101, 101), atomically."""
    return write_rles(path, ids, rle.encode(masks))


def write_rles(path: str | os.PathLike, ids: Sequence[str], rles: Sequence[str]) -> Path:
    """Write `id,rle_mask` rows of encoded masks, atomically."""
    path = Path(path)
    table = pd.DataFrame({"id": list(ids), "rle_mask": list(rles)})
    with atomic_open(path, "w", newline="") as f:
        table.to_csv(f, index=False)
    return path


def read(path: str | os.PathLike) -> pd.DataFrame:
    """Read a submission-format CSV, refusing a wrong header, duplicate ids or a bad RLE."""
    path = Path(path)
    if not path.exists():
        raise KaggleSaltError(f"{path} does not exist")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise KaggleSaltError(f"{path} is not a readable CSV: {str(e).strip()}") from None
    if list(table.columns) != COLUMNS:
        raise KaggleSaltError(f"{path}: header is '{','.join(table.columns)}', "
                              f"expected '{','.join(COLUMNS)}'")
    duplicated = table["id"].duplicated()
    if duplicated.any():
        raise KaggleSaltError(f"{path}: id {table['id'][duplicated].iloc[0]} appears twice")
    for row, (image_id, encoded) in enumerate(zip(table["id"], table["rle_mask"],
                                                  strict=True), start=2):
        try:
            rle.parse(encoded)
        except rle.RLEError as e:
            raise KaggleSaltError(f"{path}, line {row}: malformed RLE for id {image_id}: {e}"
                                  ) from None
    return table


def check_ids(table: pd.DataFrame, expected: Sequence[str], path: str | os.PathLike,
              expected_from: str) -> None:
    """Refuse a table whose ids are not exactly `expected`, naming the first difference."""
    have, want = set(table["id"]), set(expected)
    missing = [i for i in expected if i not in have]
    extra = [i for i in table["id"] if i not in want]
    if missing:
        raise KaggleSaltError(f"{path} lacks {len(missing)} id(s) of {expected_from}, "
                              f"first {missing[0]}: every id needs a row")
    if extra:
        raise KaggleSaltError(f"{path} has {len(extra)} id(s) not in {expected_from}, "
                              f"first {extra[0]}: remove them")


def masks_of(table: pd.DataFrame, ids: Sequence[str]) -> np.ndarray:
    """Decode the rows of `table` for `ids`, in that order."""
    by_id = dict(zip(table["id"], table["rle_mask"], strict=True))
    return rle.decode_many([by_id[i] for i in ids], ids=list(ids))


def score_files(submission: str | os.PathLike, truth: str | os.PathLike) -> tuple[float, int]:
    """The competition score of a submission against a truth CSV of the same ids."""
    predicted = read(submission)
    known = read(truth)
    check_ids(predicted, list(known["id"]), submission, Path(truth).name)
    ids = list(known["id"])
    return metric.score(masks_of(known, ids), masks_of(predicted, ids)), len(ids)


def validate(path: str | os.PathLike, expected_ids: Sequence[str],
             expected_from: str = "sample_submission.csv") -> pd.DataFrame:
    """A submission Kaggle will take: well-formed rows for exactly the expected ids (the
    competition's sample submission's)."""
    table = read(path)
    check_ids(table, expected_ids, path, expected_from)
    return table
