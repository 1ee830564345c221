"""The quality and speed targets of `kagglesalt cv --model unet_deep --folds 5` on a GPU.

    KERAS_BACKEND=jax python bench/bench_gpu.py --npz .devdata/tgs.npz --out $OUT \
        [--stop-after-folds 1] [--fold1-floor 0.83] [--set key=value ...] [--deadline-s S]
        [--minutes M]

`--npz` holds ids, images, masks and depths of the real training set (bench/prepare_gpu.sh
makes it from ../shared/tgs-salt). It is written out in the Kaggle layout, with 18,000 test
images made of flipped and shifted training images, so that the CV goes through the same
loader, folds, run folder and test prediction as `kagglesalt cv`. The run lives in --work,
so a second call on the same (warm) machine resumes it: `--stop-after-folds 1` trains fold
1 alone; if its score is under --fold1-floor the run is not worth the device minutes.

`--minutes 8` sizes the whole CV to 8 minutes of training whatever the GPU (H100 or H200):
each fold gets its share and re-plans its epochs from the pace it keeps, which is how
`kagglesalt cv --minutes` works for a user too.

Writes `summary.json` (OOF, per-fold scores and validation trajectories, seconds, the
prediction timing of 18,000 images x folds x snapshots x 2 TTA views) to --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd

from kagglesalt import cv, data
from kagglesalt.competition import rle
from kagglesalt.model import experiments, inference
from kagglesalt.model.settings import key_values
from kagglesalt.progress import Reporter
from kagglesalt.workspace import Workspace
from kagglesalt.workspace.runs import Run


def say(text: str) -> None:
    print(text, flush=True)


def write_layout(npz: Path, root: Path, n_test: int) -> None:
    if (root / "train.csv").exists():
        return
    arrays = np.load(npz)
    ids, images, masks, depths = (arrays[k] for k in ("ids", "images", "masks", "depths"))
    for folder in ("train/images", "train/masks", "test/images"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, image, mask in zip(ids, images, masks, strict=True):
        cv2.imwrite(str(root / "train" / "images" / f"{i}.png"), cv2.merge([image] * 3))
        cv2.imwrite(str(root / "train" / "masks" / f"{i}.png"), mask.astype(np.uint16) * 65535)
    test_ids = [f"t{k:05d}" for k in range(n_test)]
    for k, test_id in enumerate(test_ids):
        image = np.roll(images[k % len(images)], k // len(images), axis=0)
        image = image[:, ::-1] if k % 2 else image
        cv2.imwrite(str(root / "test" / "images" / f"{test_id}.png"), cv2.merge([image] * 3))
    pd.DataFrame({"id": ids, "rle_mask": rle.encode(masks)}).to_csv(root / "train.csv",
                                                                   index=False)
    pd.DataFrame({"id": [*ids, *test_ids],
                  "z": [*depths, *np.zeros(n_test, int)]}).to_csv(root / "depths.csv",
                                                                       index=False)
    pd.DataFrame({"id": test_ids, "rle_mask": ""}).to_csv(root / "sample_submission.csv",
                                                          index=False)


class PrintReporter(Reporter):
    """Prints every epoch."""

    def __init__(self):
        self.epoch_start = time.perf_counter()

    def fold_start(self, fold, folds, epochs, steps):
        say(f"fold {fold + 1}/{folds}: {epochs} epochs of {steps} steps")
        self.epoch_start = time.perf_counter()

    def epoch_end(self, epoch, row):
        now = time.perf_counter()
        say(f"  epoch {epoch:3d} [{row['stage']}] loss {row['loss']:.4f} "
            f"val {row['val_score']:.4f} @ {row['val_threshold']:.2f} "
            f"lr {row['learning_rate']:.1e} ({now - self.epoch_start:.2f} s)")
        self.epoch_start = now

    def fold_end(self, fold, score):
        say(f"fold {fold + 1}: {score:.4f} with TTA and the kept models")

    def message(self, text):
        say(text)


def time_prediction(run: Run, settings, n_folds: int, images: np.ndarray) -> dict:
    models = [keras.models.load_model(p) for k in range(n_folds) for p in run.fold_models(k)]
    inference.levels(models[:1], images[:256], settings.input_size, settings.input_mode,
                   settings.logits, batch_size=512)  # compiles
    start = time.perf_counter()
    inference.levels(models, images, settings.input_size, settings.input_mode, settings.logits,
                   batch_size=512)
    seconds = time.perf_counter() - start
    say(f"prediction of {len(images)} images x {len(models)} models x 2 TTA views: "
        f"{seconds:.1f} s")
    return {"images": len(images), "models": len(models), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--npz", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kagglesalt-bench"))
    parser.add_argument("--model", default="unet_deep")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--name", default="bench")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a training setting other than the model's default")
    parser.add_argument("--test-images", type=int, default=18_000)
    parser.add_argument("--stop-after-folds", type=int, default=99)
    parser.add_argument("--fold1-floor", type=float, default=0.0,
                        help="stop when fold 1 scores below this")
    parser.add_argument("--minutes", type=float, default=None,
                        help="the whole CV's training budget (cv --minutes): each fold gets "
                             "its share and re-plans its epochs to it")
    parser.add_argument("--deadline-s", type=int, default=0,
                        help="start no fold after this many seconds")
    args = parser.parse_args()
    say(f"keras {keras.__version__} backend {keras.backend.backend()}, python {sys.version}")
    if keras.backend.backend() == "jax":
        import jax
        say(f"devices: {jax.devices()}")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    write_layout(args.npz, args.work / "data", args.test_images)
    say(f"the Kaggle layout is ready after {time.perf_counter() - start:.1f} s")
    ws = Workspace(args.work / "data", args.work / "runs", args.work / "submissions")
    overrides = experiments.with_sets({}, key_values(args.set))  # as `cv --set` reads them
    options = cv.CVOptions(args.model, args.folds, args.name, settings=overrides,
                           minutes=args.minutes)
    deadline = time.perf_counter() + (args.deadline_s or float("inf"))
    reporter = PrintReporter()
    run = Run(ws.runs_dir / args.name)
    summary: dict = {"model": args.model, "overrides": overrides}
    start = time.perf_counter()

    def train(folds: int) -> bool:
        """Train up to `folds` more folds, one call each, starting none after the
        deadline; True when the run is finished."""
        for _ in range(folds):
            left = [k for k in range(args.folds) if run.fold_summary(k) is None]
            if not left or time.perf_counter() > deadline:
                break
            cv.run_cv(ws, dataclasses.replace(options, folds_to_train=(left[0],)), reporter)
        return run.finished

    if run.fold_summary(0) is None:
        train(1)
    first, finished = run.fold_summary(0), run.finished
    say(f"fold 1 scored {first.score:.4f} in {first.seconds} s")
    if first.score < args.fold1_floor:
        say(f"fold 1 is under {args.fold1_floor}: not worth the other folds")
    else:
        trained = sum(run.fold_summary(k) is not None for k in range(args.folds))
        finished = train(max(0, min(args.stop_after_folds, args.folds) - trained))
    if finished and run.finished:
        summary["oof"] = {"score": run.scores.score, "threshold": run.scores.threshold}
        say(f"CV done: OOF {summary['oof']['score']:.4f} at threshold "
            f"{summary['oof']['threshold']}")
        settings = cv.prepare(ws, options)[1]
        test = data.load_test(ws.data_dir)
        summary["prediction"] = time_prediction(run, settings, args.folds, test.images)
    else:
        say(f"stopped after {time.perf_counter() - start:.0f} s; finished folds are kept")
    summary["seconds_this_call"] = round(time.perf_counter() - start, 1)
    folds = [s for k in range(args.folds) if (s := run.fold_summary(k))]
    summary["folds"] = [dataclasses.asdict(s) for s in folds]
    summary["training_seconds"] = round(sum(s.seconds for s in folds), 1)
    summary["trajectories"] = {
        f"fold_{k + 1}": history[["epoch", "stage", "val_score", "learning_rate"]]
        .round(4).to_dict(orient="list") for k, history in enumerate(run.histories())}
    if run.path.exists():
        summary["settings"] = run.config.settings
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
