"""Two writers at once: the second is refused with one line naming the first, and a submit
cut short is a journal row that the next look at Kaggle resolves."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kagglesalt import cv
from kagglesalt.errors import KaggleSaltError
from kagglesalt.workspace import Workspace, locks

EXAMPLES = str(Path(__file__).parent / "plugin_examples")

HOLD = """
import sys, time
from kagglesalt.workspace import locks
with locks.holding(sys.argv[1], "it"):
    print("holding", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def held(tmp_path):
    """A folder whose lock another process holds."""
    folder = tmp_path / "held"
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                             text=True)
    assert other.stdout.readline().strip() == "holding"
    yield folder, other
    other.kill()
    other.wait()


def test_a_second_writer_is_refused_naming_the_first(held):
    folder, other = held
    with pytest.raises(KaggleSaltError, match=f"is being written by process {other.pid} on "), \
            locks.holding(folder, "it"):
        pass


def test_the_lock_of_a_process_that_died_is_free_again(held):
    folder, other = held
    other.kill()
    other.wait()
    with locks.holding(folder, "it"):
        assert json.loads((folder / locks.HOLDER).read_text())["pid"] != other.pid
    assert not (folder / locks.HOLDER).exists()


def test_two_cv_of_the_same_run_at_once_the_second_is_refused(synthetic_data, tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    run_dir = tmp_path / "runs" / "shared"
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "holding"
        with pytest.raises(KaggleSaltError, match="run shared is being written by process"):
            cv.run_cv(ws, cv.CVOptions("tiny", 2, "shared", EXAMPLES, {"epochs": 1}))
        assert not (run_dir / "config.json").exists()  # nothing written under its lock
    finally:
        other.kill()
        other.wait()
    time.sleep(0.1)
    assert cv.run_cv(ws, cv.CVOptions("tiny", 2, "shared", EXAMPLES, {"epochs": 1})).finished
