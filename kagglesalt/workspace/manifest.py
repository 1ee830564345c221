"""A run folder's manifest: the size and SHA-256 of each file that is whole, so a copy of
the folder made elsewhere (a Kaggle kernel's output) can be checked file by file.

Written by the machine that trains, at the start of each fold and at the end: it lists the
run-level records and the files of the folds finished by then, never a fold in training.
A copy keeps what matches and drops the rest (`keep_whole`): a fold with a file missing,
cut short or changed is not finished there, and is trained again by the next `cv`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from kagglesalt.atomic import write_json

MANIFEST = "manifest.json"
CHUNK = 1 << 20


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _whole_files(run_path: Path) -> list[Path]:
    """The run-level files and those of the folds whose done.json is written."""
    files = [p for p in run_path.iterdir() if p.is_file() and not p.name.startswith(".")
             and p.name != MANIFEST]
    for fold in sorted(run_path.glob("fold_*")):
        if (fold / "done.json").is_file():
            files += [p for p in fold.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return files


def write(run_path: str | os.PathLike) -> None:
    run_path = Path(run_path)
    entries = {p.relative_to(run_path).as_posix(): {"bytes": p.stat().st_size,
                                                    "sha256": _digest(p)}
               for p in _whole_files(run_path)}
    write_json(run_path / MANIFEST, {"files": entries})


def keep_whole(run_path: str | os.PathLike) -> list[str]:
    """Drop from `run_path` every file its manifest does not vouch for, and every fold
    with a file that fails it; returns what was dropped, in words. Without a manifest,
    nothing in the folder is known whole, and all of it goes."""
    import json

    run_path = Path(run_path)
    try:
        entries = json.loads((run_path / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        shutil.rmtree(run_path, ignore_errors=True)
        return [f"{run_path.name} (no whole manifest)"]
    bad = set()
    for name, entry in entries.items():
        path = run_path / name
        try:
            whole = path.is_file() and path.stat().st_size == entry["bytes"] and \
                _digest(path) == entry["sha256"]
        except (OSError, KeyError, TypeError):
            whole = False
        if not whole:
            bad.add(name)
    dropped = []
    for fold in sorted(run_path.glob("fold_*")):
        names = {p.relative_to(run_path).as_posix() for p in fold.rglob("*") if p.is_file()}
        listed = {n for n in entries if n.startswith(f"{fold.name}/")}
        if f"{fold.name}/done.json" not in listed or bad & listed or listed - names:
            shutil.rmtree(fold)
            dropped.append(fold.name)
    for path in sorted(run_path.rglob("*")):
        name = path.relative_to(run_path).as_posix()
        if path.is_file() and name != MANIFEST and (name in bad or name not in entries):
            path.unlink()
            if not path.name.startswith("."):  # a lock of the machine that wrote it
                dropped.append(name)
    return dropped
