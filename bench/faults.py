"""The kill loop: `kagglesalt cv`, `ensemble` and `report` killed at random moments, and what
must hold after each kill.

    python bench/faults.py [--kills 12] [--seed 0] [--work /tmp/kagglesalt-faults]

On a small synthetic data set and the tiny test model, each round starts the command in a
fresh process, sends it SIGKILL after a random delay, and checks the workspace:

- every fold with a done.json is whole (`Run.fold_problem`), and none is counted finished
  that is not;
- no half-written file is visible: every .npy loads, every .json parses, every submission
  CSV has the sample's ids, and only temporaries (`.*.tmp`) may be partial;
- the ledger parses, and it names only submission files that exist.

At the end the commands run to completion, and the run must be finished with every fold
trained once (a resumed fold goes on from its checkpoint rather than starting over).
Prints one line per kill and exits non-zero on the first broken invariant.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "plugin_examples"


def kagglesalt(work: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "kagglesalt", "--data-dir", str(work / "data"),
            "--runs-dir", str(work / "runs"), "--submissions-dir", str(work / "submissions"),
            *args]


def check(work: Path) -> list[str]:
    """The broken invariants of the workspace, in words (none: an empty list)."""
    from kagglesalt import data
    from kagglesalt.competition import submission
    from kagglesalt.errors import KaggleSaltError
    from kagglesalt.workspace import runs, submissions

    broken = []
    for run in runs.all_runs(work / "runs"):
        for k in range(run.n_folds):
            if (run.fold_dir(k) / "done.json").exists() and run.fold_problem(k):
                broken.append(f"fold {k} of {run.name} counted finished: "
                              f"{run.fold_problem(k)}")
    for path in (work / "runs").rglob("*.npy"):
        if not path.name.endswith(".tmp"):
            try:
                np.load(path, mmap_mode="r")
            except (OSError, ValueError) as e:
                broken.append(f"{path} is half written: {e}")
    for path in list((work / "runs").rglob("*.json")) + \
            list((work / "submissions").glob("*.json")):
        try:
            json.loads(path.read_text())
        except ValueError:
            broken.append(f"{path} is half written")
    ids = data.sample_submission_ids(work / "data")
    for path in (work / "submissions").glob("*.csv"):
        if path.name != submissions.LEDGER:
            try:
                submission.validate(path, ids)
            except KaggleSaltError as e:
                broken.append(str(e))
    try:
        table = submissions.Ledger(work / "submissions").read()
        broken += [f"the ledger names {name}, which is not there" for name in table["file"]
                   if not (work / "submissions" / name).exists()]
    except KaggleSaltError as e:
        broken.append(str(e))
    return broken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kagglesalt-faults"))
    args = parser.parse_args()
    import shutil

    shutil.rmtree(args.work, ignore_errors=True)
    subprocess.run(kagglesalt(args.work, "synth", "--train", "160", "--test", "40"),
                   check=True, capture_output=True)
    cv = ["cv", "--model", "tiny_head", "--plugins-dir", str(TINY), "--folds", "3",
          "--epochs", "12", "--loss", "bce+lovasz", "--lovasz-share", "0.5", "--schedule",
          "cosine", "--snapshots", "2", "--name", "killed"]
    rng = random.Random(args.seed)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for kill in range(args.kills):
        command = cv if kill % 4 else ["ensemble", "killed", "--name", f"e{kill}"]
        if command[0] == "ensemble" and not (args.work / "runs" / "killed" /
                                             "scores.json").exists():
            command = cv
        process = subprocess.Popen(kagglesalt(args.work, *command), env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(2.0, 15.0)
        time.sleep(delay)
        outcome = "finished before the kill" if process.poll() is not None else "killed"
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        broken = check(args.work)
        print(f"kill {kill + 1}: {command[0]} {outcome} after {delay:.1f} s: "
              f"{'ok' if not broken else broken[0]}", flush=True)
        if broken:
            sys.exit(1)
        if outcome != "killed" and command is cv:  # a finished run: the next round anew
            shutil.rmtree(args.work / "runs" / "killed")
    subprocess.run(kagglesalt(args.work, *cv), env=env, check=True, capture_output=True)
    subprocess.run(kagglesalt(args.work, "ensemble", "killed", "--name", "final"), env=env,
                   check=True, capture_output=True)
    from kagglesalt.workspace import runs

    run = runs.open_run(args.work / "runs", "killed")
    epochs = [run.fold_summary(k).epochs_run for k in range(run.n_folds)]
    broken = check(args.work)
    print(f"finished: OOF {run.oof_score:.4f}, epochs per fold {epochs}; "
          f"{'ok' if not broken and run.finished else broken}")
    sys.exit(1 if broken or not run.finished else 0)


if __name__ == "__main__":
    main()
