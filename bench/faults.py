"""Fault injection: commands killed at random moments, run records damaged at random, folds
on Ray killed with their driver; and what must hold after each.

    python bench/faults.py [kill] [--kills 12] [--seed 0] [--work /tmp/kagglesalt-faults]
    python bench/faults.py damage [--rounds 40] [--seed 0]
    python bench/faults.py ray [--kills 4] [--seed 0]

All on a small synthetic data set and the tiny test model, each command in a fresh process.

`kill`: starts `cv`, `ensemble` or `report`, sends it SIGKILL after a random delay, and
checks the workspace:

- every fold with a done.json is whole (`Run.fold_problem`), and none is counted finished
  that is not;
- no half-written file is visible: every .npy loads, every .json parses, every submission
  CSV has the sample's ids, and only temporaries (`.*.tmp`) may be partial;
- the ledger parses, and it names only submission files that exist.

At the end the commands run to completion, and the run must be finished with every fold
trained once (a resumed fold goes on from its checkpoint rather than starting over).

`damage`: a finished run, copied each round, one of its files damaged (cut short, zeroed,
garbage, gone), then one of `runs`, `cv` (the run's own command), `ensemble`, `report`,
`oof`, and the data cache damaged under `cv` of a new run: no traceback, exit 0 or one
"Error:" line, every fold that was not damaged still finished and whole (a damaged record
is rebuilt or refused, never a reason to retrain finished folds), and `cv` rebuilds what
it owns.

`ray`: `cv --ray` killed with SIGKILL mid-fold: none of the Ray processes it started may
be left 15 s later, and a rerun finishes the run.

Prints one line per round and exits non-zero on the first broken invariant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
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


ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def cv_command(name: str, epochs: int = 12) -> list[str]:
    return ["cv", "--model", "tiny_head", "--plugins-dir", str(TINY), "--folds", "3",
            "--epochs", str(epochs), "--loss", "bce+lovasz", "--lovasz-share", "0.5",
            "--schedule", "cosine", "--snapshots", "2", "--name", name]


def fresh(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(kagglesalt(work, "synth", "--train", "160", "--test", "40"),
                   check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=("kill", "damage", "ray"), default="kill")
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kagglesalt-faults"))
    args = parser.parse_args()
    fresh(args.work)
    rng = random.Random(args.seed)
    {"kill": kill_loop, "damage": damage_loop, "ray": ray_loop}[args.mode](args, rng)


def kill_loop(args, rng: random.Random) -> None:
    cv = cv_command("killed")
    env = ENV
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


# ----------------------------------------------------------------------------- damage

DAMAGES = ("cut short", "zeroed", "garbage", "gone")


def damage(path: Path, kind: str, rng: random.Random) -> None:
    size = path.stat().st_size
    if kind == "cut short":
        with open(path, "r+b") as f:
            f.truncate(rng.randrange(0, max(1, size)))
    elif kind == "zeroed":
        path.write_bytes(bytes(size))
    elif kind == "garbage":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(max(1, min(size, 4096)))))
    else:
        path.unlink()


def said_well(result: subprocess.CompletedProcess) -> str | None:
    """What is wrong with how a command ended, in words; None: exit 0, or exit 1 with
    one Error: line, and never a traceback."""
    text = result.stdout + result.stderr
    if "Traceback" in text:
        return "a traceback: " + text.strip().splitlines()[-1]
    if result.returncode == 0:
        return None
    errors = [line for line in text.splitlines() if line.startswith("Error:")]
    if result.returncode != 1 or len(errors) != 1:
        return f"exit {result.returncode} with {len(errors)} Error: lines: {text[-300:]!r}"
    return None


def damage_loop(args, rng: random.Random) -> None:
    from kagglesalt.workspace import runs

    work = args.work
    subprocess.run(kagglesalt(work, *cv_command("pristine", epochs=4)), env=ENV, check=True,
                   capture_output=True)
    pristine = work / "runs" / "pristine"
    files = sorted(p.relative_to(pristine) for p in pristine.rglob("*") if p.is_file()
                   and not p.name.startswith("."))
    commands = {"runs": lambda: ["runs"], "cv": lambda: cv_command("d", epochs=4),
                "ensemble": lambda: ["ensemble", "d", "--name", "e"],
                "report": lambda: ["report", "d"], "oof": lambda: ["oof", "d"]}
    for round_ in range(args.rounds):
        target = work / "runs" / "d"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(pristine, target)
        config = json.loads((target / "config.json").read_text())
        config["name"] = "d"
        (target / "config.json").write_text(json.dumps(config))
        victim, kind = rng.choice(files), rng.choice(DAMAGES)
        damage(target / victim, kind, rng)
        command = rng.choice(sorted(commands))
        result = subprocess.run(kagglesalt(work, *commands[command]()), env=ENV,
                                capture_output=True, text=True)
        broken = said_well(result)
        hit = victim.parts[0] if victim.parts[0].startswith("fold_") else None
        run = runs.Run(target)
        if broken is None and run.started:
            try:
                for k in range(run.n_folds):
                    if f"fold_{k}" != hit and run.fold_problem(k) is not None:
                        broken = f"fold {k} lost: {run.fold_problem(k)}"
            except Exception as e:  # a record the check itself cannot read
                broken = f"{type(e).__name__}: {e}" if command == "cv" else None
        if broken is None and command == "cv" and result.returncode == 0 and \
                not run.finished:
            broken = "cv ended without finishing the run"
        print(f"round {round_ + 1}: {victim} {kind}, then {command}: exit "
              f"{result.returncode}: {broken or 'ok'}", flush=True)
        if broken:
            sys.exit(1)
    cache_round(work, rng)


def cache_round(work: Path, rng: random.Random) -> None:
    """Same-size damage to the decoded-data cache: a new run must not train on it."""
    caches = sorted((work / "data" / ".cache").rglob("*.npy"))
    victim = rng.choice(caches)
    size = victim.stat().st_size
    with open(victim, "r+b") as f:
        f.seek(size // 2)
        f.write(bytes(rng.randrange(256) for _ in range(64)))
    result = subprocess.run(kagglesalt(work, *cv_command("after-cache", epochs=2)), env=ENV,
                            capture_output=True, text=True)
    broken = said_well(result) or (None if result.returncode == 0 else "cv refused")
    rebuilt = victim.exists() and victim.stat().st_mtime > time.time() - 600
    print(f"cache: {victim.name} damaged, then cv: {broken or 'ok'}"
          f"{'' if rebuilt else ' (the cache was not rebuilt)'}", flush=True)
    if broken or not rebuilt:
        sys.exit(1)


# ----------------------------------------------------------------------------- ray


def ray_loop(args, rng: random.Random) -> None:
    import psutil

    cv = [*cv_command("on-ray", epochs=60), "--ray"]
    for kill in range(args.kills):
        driver = subprocess.Popen(kagglesalt(args.work, *cv), env=ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen: dict[int, float] = {}
        deadline = time.monotonic() + rng.uniform(12.0, 40.0)
        while time.monotonic() < deadline and driver.poll() is None:
            with contextlib.suppress(psutil.Error):
                seen.update({p.pid: p.create_time() for p in
                             psutil.Process(driver.pid).children(recursive=True)})
            time.sleep(0.5)
        killed = driver.poll() is None
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        time.sleep(15)
        left = []
        for pid, started in seen.items():
            try:
                process = psutil.Process(pid)
                if process.create_time() == started:
                    left.append(" ".join(process.cmdline())[:60])
            except psutil.Error:
                pass
        broken = check(args.work) + [f"left behind: {', '.join(left)}"] * bool(left)
        print(f"ray kill {kill + 1}: {'killed' if killed else 'finished before the kill'}, "
              f"{len(seen)} processes under the driver: {broken[0] if broken else 'ok'}",
              flush=True)
        if broken:
            sys.exit(1)
    finish = subprocess.run(kagglesalt(args.work, *cv), env=ENV, capture_output=True)
    from kagglesalt.workspace import runs

    run = runs.open_run(args.work / "runs", "on-ray")
    print(f"rerun: exit {finish.returncode}, finished {run.finished}")
    sys.exit(0 if finish.returncode == 0 and run.finished else 1)


if __name__ == "__main__":
    main()
