"""One recipe change, ranked cheaply: fold 1 of the CPU path, given the time the whole
path would give it.

    python bench/bench_fold1.py [--model unet_lite] [--folds 3] [--minutes 45]
        [--data ../shared/tgs-salt] [--work DIR] [--label NAME] [--set KEY=VALUE ...]
        [--pseudo SOURCE [--pseudo-confidence C]]

Trains only fold 1 of `cv --model M --folds K --minutes N` (its share of the budget, N/K
minutes, the epochs chosen as the whole run would choose them, re-planned as it goes) with
the settings changed by `--set` as `cv --set` reads them (`lovasz_share=0.6`,
`params.start_filters=12`), or with cv's pseudo-labels of a run or ensemble in WORK. Prints
one table row (fold 1's score with flip TTA, epochs run, seconds, the training rates
measured before it) and appends it as JSON to `WORK/fold1.jsonl`, so a series of changes
measured one after another in one session can be put in a table (bench/RESULTS.md).
Compare rows measured back to back on one machine only: the machines drift.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "tgs-salt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet_lite")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=45.0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kagglesalt-fold1"))
    parser.add_argument("--label", help="the row's name [the --set values]")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--pseudo", metavar="SOURCE",
                        help="a finished run or ensemble in WORK whose test predictions "
                             "train as pseudo-labels (cv --pseudo)")
    parser.add_argument("--pseudo-confidence", type=float, default=0.97)
    args = parser.parse_args()
    if not (args.data / "train.csv").exists():
        sys.exit(f"no competition data in {args.data}")

    from kagglesalt import cv
    from kagglesalt.model import experiments
    from kagglesalt.model.settings import key_values
    from kagglesalt.progress import Reporter
    from kagglesalt.workspace import Workspace

    class Say(Reporter):
        def message(self, text: str) -> None:
            print(text, flush=True)

        def epoch_end(self, epoch: int, row: dict[str, float]) -> None:
            if row.get("val_score") == row.get("val_score"):
                print(f"  epoch {epoch:3d} [{row['stage']}] loss {row['loss']:.4f} "
                      f"val {row['val_score']:.4f}", flush=True)

    label = args.label or (" ".join(args.set + ([f"pseudo={args.pseudo}"] if args.pseudo
                                                 else [])) or "defaults")
    name = "fold1-" + "".join(c if c.isalnum() or c in "._=+-" else "_" for c in label)
    ws = Workspace(args.data, args.work / "runs", args.work / "submissions")
    shutil.rmtree(ws.runs_dir / name, ignore_errors=True)  # a measurement starts anew
    settings = experiments.with_sets({}, key_values(args.set))  # as `cv --set` reads them
    options = cv.CVOptions(args.model, args.folds, name, settings=settings,
                           minutes=args.minutes, folds_to_train=(0,), pseudo=args.pseudo,
                           pseudo_confidence=args.pseudo_confidence)
    started = time.perf_counter()
    run = cv.run_cv(ws, options, Say())
    wall = time.perf_counter() - started
    fold = run.finished_fold(0)
    rates = run.config.rates or {}
    row = {"label": label, "model": args.model, "score": round(fold.score, 4),
           "train_images": fold.train_images,
           "epochs": fold.epochs_run, "best_epoch": fold.best_epoch,
           "seconds": fold.seconds, "wall": round(wall), "rates": rates.get("train"),
           "device": run.config.device, "day": time.strftime("%Y-%m-%d %H:%M")}
    args.work.mkdir(parents=True, exist_ok=True)
    with open(args.work / "fold1.jsonl", "a") as log:
        log.write(json.dumps(row) + "\n")
    print(f"| {label} | {row['score']:.4f} | {row['epochs']} | {row['seconds']:.0f} | "
          f"{row['rates']} |")


if __name__ == "__main__":
    main()
