"""The CPU path on the real data: `kagglesalt cv --minutes N`, then `kagglesalt ensemble`.

    python bench/bench_budget.py [--model unet_lite] [--folds 3] [--minutes 45]
        [--data ../shared/tgs-salt] [--work DIR] [--keep bench/results/cpu_45min.csv]
        [--record] [-- EXTRA CV OPTIONS]

Runs the two commands exactly as a user would (the installed `kagglesalt`, in a fresh
process), times the whole `cv` from the outside, and reads the run folder and the ensemble
record for the figures: per-fold and OOF scores, the ensemble's OOF after post-processing,
the epochs each fold ran against the first plan, and the rates measured before training.
`--record` appends them to bench/RESULTS.md; `--keep` copies the submission for the test
ids (checked against sample_submission.csv) to a path of our results.

It is also the cheap real-data check of a recipe change before a GPU is spent on it: give
the change as cv options after `--` (e.g. `-- --loss bce+lovasz --lovasz symmetric`) and
compare the OOF with a run without it, at the same budget, measured in the same session.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "tgs-salt"


def kagglesalt(args: list[str], env: dict[str, str]) -> float:
    """Runs the installed command line; returns its wall seconds."""
    command = [sys.executable, "-m", "kagglesalt", *args]
    print("$ kagglesalt " + shlex.join(args), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    return time.perf_counter() - started


def cpu() -> str:
    from kagglesalt.model.backend import _cpu_name

    return f"{_cpu_name()}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet_lite")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=45.0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kagglesalt-bench"))
    parser.add_argument("--name", help="run name [MODEL-kFOLDS-mMINUTES]")
    parser.add_argument("--keep", type=Path, help="copy the submission here")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("extra", nargs="*", help="more cv options, after --")
    args = parser.parse_args()
    if not (args.data / "train.csv").exists():
        sys.exit(f"no competition data in {args.data}")

    from kagglesalt import data
    from kagglesalt.competition import submission
    from kagglesalt.workspace import runs, submissions

    name = args.name or f"{args.model}-k{args.folds}-m{args.minutes:g}"
    runs_dir, subs_dir = args.work / "runs", args.work / "submissions"
    if (runs_dir / name).exists():
        shutil.rmtree(runs_dir / name)  # a measurement starts from nothing
    env = {**os.environ, "KAGGLESALT_DATA_DIR": str(args.data),
           "KAGGLESALT_RUNS_DIR": str(runs_dir), "KAGGLESALT_SUBMISSIONS_DIR": str(subs_dir)}
    wall = kagglesalt(["cv", "--model", args.model, "--folds", str(args.folds),
                       "--minutes", f"{args.minutes:g}", "--name", name, *args.extra], env)
    # An ensemble's name is never reused (the ledger keeps earlier ones): one per measurement.
    ensemble = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    ensemble_wall = kagglesalt(["ensemble", name, "--name", ensemble], env)

    run = runs.open_run(runs_dir, name)
    config = run.config
    record = submissions.read_ensemble(subs_dir / f"{ensemble}.csv")
    submission.validate(subs_dir / f"{ensemble}.csv", data.sample_submission_ids(args.data))
    folds = [run.fold_summary(k) for k in range(run.n_folds)]
    rates = config.rates
    lines = [
        f"### `cv --model {args.model} --folds {args.folds} --minutes {args.minutes:g}"
        + (f" {shlex.join(args.extra)}" if args.extra else "") + "` + `ensemble`",
        "",
        f"{time.strftime('%Y-%m-%d')}, {cpu()}, Python {platform.python_version()}, "
        f"{config.device}.",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| cv wall time (process start to exit) | {wall:.0f} s "
        f"({100 * wall / (args.minutes * 60):.1f}% of the budget) |",
        f"| ensemble wall time | {ensemble_wall:.0f} s |",
        f"| rates measured before training | train {rates['train']} images/s, predict "
        f"{rates['predict']} images/s, compile {rates['compile']} s |",
        f"| epochs planned / run per fold | {config.budget['epochs']} / "
        f"{', '.join(str(f.epochs_run) for f in folds)} |",
        f"| seconds per fold | {', '.join(f'{f.seconds:.0f}' for f in folds)} |",
        f"| fold scores | {', '.join(f'{f.score:.4f}' for f in folds)} |",
        f"| OOF score | {run.oof_score:.4f} (threshold {run.threshold:.2f}) |",
        f"| ensemble OOF, post-processed | {record.oof_score:.4f} "
        f"(before post-processing {record.score_before_postprocess:.4f}) |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.keep:
        args.keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(subs_dir / f"{ensemble}.csv", args.keep)
        print(f"Kept the submission as {args.keep}")
    if args.record:
        with open(ROOT / "bench" / "RESULTS.md", "a") as results:
            results.write("\n" + text)


if __name__ == "__main__":
    main()
