"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


def _file_mode() -> int:
    """The mode a plain open() would give a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds,
    with the permissions the user's umask gives new files."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # a read-only folder: name it, not the temporary that failed
        raise OSError(e.errno, e.strerror, str(path.parent)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _file_mode())  # mkstemp makes 0600 files
        os.replace(tmp_path, path)
        _sync_folder(path.parent)  # the rename itself reaches the disk
    except OSError as e:
        if e.filename is None or Path(e.filename) == tmp_path:  # name what the user knows
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """A file that appears whole at `path` when the block ends, flushed to the disk first
    (so a power cut leaves the old file or the new one, not an empty one)."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every system opens folders
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def clean_leftovers(folder: str | os.PathLike, target: str | None = None,
                    older_than: float = 0.0) -> None:
    """Remove the temporary files of writes that a killed process left in `folder`: all of
    them (under the folder's lock), or those of file `target` last touched `older_than`
    seconds ago or more (where no lock keeps a live writer of it away)."""
    import time

    pattern = f".{target}.*.tmp" if target else ".*.tmp"
    for tmp in Path(folder).glob(pattern):
        with contextlib.suppress(OSError):
            if time.time() - tmp.stat().st_mtime >= older_than:
                tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.save(f, array)
