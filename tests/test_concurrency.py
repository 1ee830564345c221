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


BRIEFLY = """
import sys, time
from kagglesalt.workspace import locks
with locks.holding(sys.argv[1], "it"):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_short_writer_waits_for_a_short_lock_and_says_whom_it_waits_for(tmp_path):
    folder = tmp_path / "briefly"
    other = subprocess.Popen([sys.executable, "-c", BRIEFLY, str(folder), "1.5"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "holding"
        said = []
        began = time.monotonic()
        with locks.holding(folder, "the folder", wait=30, waiting=said.append):
            waited = time.monotonic() - began
        assert 0.5 < waited < 30
        assert len(said) == 1 and said[0].startswith("Waiting up to 30 s for the folder, "
                                                     f"which process {other.pid} on ")
    finally:
        other.kill()
        other.wait()


def test_a_short_wait_has_a_bound(held):
    folder, other = held
    with pytest.raises(KaggleSaltError, match=f"still being written by process {other.pid} "
                                              "on .* after 1 s"), \
            locks.holding(folder, "it", wait=1.0):
        pass


def test_two_ensembles_of_other_names_at_once_both_land(tmp_path, synthetic_master,
                                                       trained_runs):
    """One holds the submissions folder for a moment; the other waits instead of failing."""
    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "subs")
    trained_runs(ws, "first", seed=1)
    code = ("import sys\nfrom pathlib import Path\nfrom kagglesalt import ensemble\n"
            "from kagglesalt.workspace import Workspace\n"
            "ws = Workspace(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))\n"
            "ensemble.run_ensemble(ws, ['first'], name=sys.argv[4], warn=print)\n")
    args = [str(ws.data_dir), str(ws.runs_dir), str(ws.submissions_dir)]
    both = [subprocess.Popen([sys.executable, "-c", code, *args, name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in ("one", "two")]
    for process in both:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert sorted(p.name for p in ws.submissions_dir.glob("*.csv")) == \
        ["ledger.csv", "one.csv", "two.csv"]
