"""One writer at a time per run folder and per submissions folder.

Two `kagglesalt cv --name X` at once would each write the other's folder; two `submit` at
once would each upload and each rewrite the ledger. A writer holds the folder's lock (a
`filelock` lock file, released by the system if the process dies) for as long as it
writes, and leaves a note of who it is beside it, so a second writer is refused with one
line naming the holder. Readers need no lock: every file is replaced atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from kagglesalt.errors import KaggleSaltError

LOCK = ".lock"
HOLDER = ".lock.holder"


SHORT_WAIT = 60.0  # seconds a short writer waits for another short one (an ensemble, a submit)


@contextlib.contextmanager
def holding(folder: str | os.PathLike, what: str, wait: float = 0.0,
            waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold `folder`'s lock, or raise KaggleSaltError naming who holds it. `what` names
    the folder for the user ("run X", "the submissions folder"). With `wait`, a writer
    whose work is short waits up to that many seconds for the holder, saying so once
    through `waiting`, instead of failing at once."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if wait <= 0:
            raise KaggleSaltError(f"{what} is being written by {_holder(folder)}: wait for "
                                  "it to finish (or stop it), then run this again") from None
        holder = _holder(folder)
        if waiting is not None:
            waiting(f"Waiting up to {wait:.0f} s for {what}, which {holder} is writing")
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise KaggleSaltError(f"{what} is still being written by {holder} after "
                                  f"{wait:.0f} s: wait for it to finish (or stop it), then "
                                  "run this again") from None
    note = folder / HOLDER
    try:
        note.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                    "command": " ".join(sys.argv),
                                    "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        yield
    finally:
        note.unlink(missing_ok=True)
        lock.release()


def _holder(folder: Path) -> str:
    try:
        note = json.loads((folder / HOLDER).read_text())
    except (OSError, ValueError):
        return "another kagglesalt process"
    return (f"process {note['pid']} on {note['host']} since {note['since']} "
            f"({note['command']})")
