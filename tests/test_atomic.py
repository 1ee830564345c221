"""Atomic writes: all or nothing, with the permissions a plain write would have."""

import os
import stat

import numpy as np
import pytest

from kagglesalt.atomic import atomic_open, save_npy, write_bytes, write_json, write_text


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_permissions_of_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        save_npy(tmp_path / "a.npy", np.zeros(3))
        write_bytes(tmp_path / "a.bin", b"x")
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    for name in ("a.json", "a.npy", "a.bin"):
        assert mode(tmp_path / name) == mode(tmp_path / "plain.txt") == 0o666 & ~umask


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "scores.json"
    write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_open(path, "w") as f:
        f.write("half of the new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]


def test_folders_are_made_as_needed(tmp_path):
    write_text(tmp_path / "a" / "b" / "c.txt", "deep")
    assert (tmp_path / "a" / "b" / "c.txt").read_text() == "deep"


def test_a_failed_write_names_the_file_not_its_temporary(tmp_path, monkeypatch):
    import errno

    from kagglesalt import atomic

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(OSError) as raised:
        atomic.write_text(tmp_path / "scores.json", "{}")
    assert raised.value.filename == str(tmp_path / "scores.json")
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


def test_leftovers_of_a_killed_write_are_cleaned(tmp_path):
    from kagglesalt import atomic

    (tmp_path / ".oof.npy.abc123.tmp").write_bytes(b"half")
    (tmp_path / "oof.npy").write_bytes(b"whole")
    atomic.clean_leftovers(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["oof.npy"]
