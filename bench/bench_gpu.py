"""The quality and speed targets of `kagglesalt cv --model unet_deep --folds 5` on a GPU,
and the submission that run makes.

    KERAS_BACKEND=jax python bench/bench_gpu.py --npz .devdata/tgs.npz --out $OUT \
        [--resume .devdata] [--stop-after-folds 1] [--fold1-floor 0.84] \
        [--minutes M] [--deadline-s S] [--set key=value ...]

`--npz` is the real competition packed by `bench/gpu_data.py`. It is unpacked into the
Kaggle layout (training images and masks, test images, sample_submission.csv), so the run
is a user's `kagglesalt cv` and `kagglesalt ensemble`: the same loader, folds, run folder,
fold-averaged test predictions and validated submission.

Fold 1 first: if it scores under --fold1-floor the other folds are not worth the device
minutes. `--minutes 8` sizes the whole CV to 8 minutes of training whatever the GPU: each
fold gets its share and re-plans its epochs from the pace it keeps (`cv --minutes`).
`--deadline-s` starts no fold after that many seconds, so a call ends at a fold boundary.

Resuming: the run lives in --work, so a call on the same warm machine goes on with it. After
every fold, the run folder without its model files (records and prediction arrays, about
16 MB) is packed into $OUT/run.tar.gz and $OUT/run_tests.tar.gz; carried back in the folder
given as --resume, they let a call on a fresh machine train only the folds still to do
(cv keeps a finished fold whose models stayed behind when it trains others, and finishes
the run from its predictions).

Once every fold is done: the ensemble's submission, $OUT/<model>_<folds>fold.csv, and, outside
the timed folds, the time to predict --timing-images images (18,000: Kaggle's test set) x
folds x snapshots x 2 TTA views, with the run's models where this machine has them and
with models of the same architecture otherwise (weights do not change the time).
$OUT/summary.json holds the figures: OOF, fold scores and seconds, images/s, validation
score by epoch, the ensemble's OOF, the prediction time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

import keras
import numpy as np
from gpu_data import write_layout

from kagglesalt import cv, data, ensemble
from kagglesalt.model import experiments, inference
from kagglesalt.model import layers as _registered_layers  # noqa: F401  loads our models
from kagglesalt.model.fold import build_models
from kagglesalt.model.settings import key_values
from kagglesalt.progress import Reporter
from kagglesalt.workspace import Workspace, locks, submissions
from kagglesalt.workspace.runs import CHECKPOINT, Run


def say(text: str) -> None:
    print(text, flush=True)


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


# The run comes back as two archives, so that each stays under the 16 MiB a file from the
# device may have: the folds' predictions of the test images (5 x 783 images, about 9 MB
# compressed) apart from the rest (records and out-of-fold predictions, about 7 MB).
ARCHIVES = ("run.tar.gz", "run_tests.tar.gz")


def pack_run(run: Run, out: Path) -> None:
    """The run's records and its folds' predictions as the ARCHIVES in out, each written
    whole (a call killed while packing leaves the previous one). Model files and training
    checkpoints stay (hundreds of MB), and so do the run's own arrays, which cv remakes from
    its folds'."""
    derived = {f"{run.name}/oof.npy", f"{run.name}/test.npy"}

    def archive_of(member: tarfile.TarInfo) -> str | None:
        name = Path(member.name).name
        if name.endswith(".keras") or name in (CHECKPOINT, locks.LOCK) or member.name in derived:
            return None
        return ARCHIVES[1] if name == "test.npy" else ARCHIVES[0]

    for archive in ARCHIVES:
        def keep(member: tarfile.TarInfo, archive: str = archive) -> tarfile.TarInfo | None:
            return member if member.isdir() or archive_of(member) == archive else None

        partial = out / f"{archive}.partial"
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(run.path, arcname=run.name, filter=keep)
        os.replace(partial, out / archive)


def restore_run(folder: Path, runs_dir: Path, name: str) -> bool:
    """Unpack a run packed by `pack_run` (its ARCHIVES in folder) into runs_dir, unless this
    machine has the run."""
    archives = [folder / a for a in ARCHIVES if (folder / a).exists()]
    if (runs_dir / name / "config.json").exists() or not archives:
        return False
    runs_dir.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        with tarfile.open(archive) as tar:
            tar.extractall(runs_dir, filter="data")
    # Packed without its own arrays: unfinished until cv remakes them from the folds'.
    (runs_dir / name / "scores.json").unlink(missing_ok=True)
    return True


def timing_images(images: np.ndarray, n: int) -> np.ndarray:
    """n distinct images made of `images` by flips and vertical rolls."""
    k = np.arange(n)
    out = images[k % len(images)].copy()
    for row, shift in enumerate(k // len(images)):
        out[row] = np.roll(out[row], shift, axis=0)
    out[1::2] = out[1::2, :, ::-1]
    return out


def time_prediction(run: Run, spec, settings, images: np.ndarray) -> dict:
    """Seconds to predict `images` with every fold's models, two TTA views each."""
    counts = [run.fold_summary(k).models for k in range(run.n_folds)]
    paths = [p for k in range(run.n_folds) for p in run.fold_models(k)]
    if len(paths) == sum(counts):
        models, which = [keras.models.load_model(p) for p in paths], "the run's"
    else:  # the models of folds trained on another machine stayed there
        models = [build_models(spec, settings)[1] for _ in range(sum(counts))]
        which = "built, same architecture"
    args = (settings.input_size, settings.input_mode, settings.logits)
    inference.levels(models[:1], images[:256], *args, batch_size=512)  # compiles
    start = time.perf_counter()
    inference.levels(models, images, *args, batch_size=512)
    seconds = time.perf_counter() - start
    say(f"prediction of {len(images)} images x {len(models)} models ({which}) x 2 TTA "
        f"views: {seconds:.1f} s")
    return {"images": len(images), "models": len(models), "which_models": which,
            "seconds": round(seconds, 1)}


def make_submission(ws: Workspace, run: Run, out: Path) -> dict:
    """`kagglesalt ensemble` of the run, its CSV copied to out (made once per run)."""
    name = f"{run.config.model}_{run.n_folds}fold"
    path = Path(ws.submissions_dir) / f"{name}.csv"
    if not path.exists():
        result = ensemble.run_ensemble(ws, [run.name], name=name)
        say(f"submission {path.name}: OOF {result.oof_score:.4f} (threshold "
            f"{result.threshold:.2f}, {result.threshold_score:.4f} before post-processing)")
    shutil.copy(path, out / path.name)
    record = submissions.read_ensemble(path)
    return {"file": path.name, "oof_score": record.oof_score, "threshold": record.threshold,
            "score_before_postprocess": record.score_before_postprocess,
            "postprocess": record.postprocess}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--npz", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kagglesalt-bench"))
    parser.add_argument("--resume", type=Path, default=None,
                        help="a folder holding the run archives an earlier call left in "
                             "its --out")
    parser.add_argument("--model", default="unet_deep")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--name", default="bench")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a training setting other than the model's default")
    parser.add_argument("--timing-images", type=int, default=18_000,
                        help="images of the prediction timing (0: no timing)")
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
    write_layout(args.npz, args.work / "data")
    say(f"the Kaggle layout is ready after {time.perf_counter() - start:.1f} s")
    ws = Workspace(args.work / "data", args.work / "runs", args.work / "submissions")
    if args.resume and restore_run(args.resume, Path(ws.runs_dir), args.name):
        say(f"run {args.name} restored from {args.resume}")
    overrides = experiments.with_sets({}, key_values(args.set))  # as `cv --set` reads them
    options = cv.CVOptions(args.model, args.folds, args.name, settings=overrides,
                           minutes=args.minutes)
    deadline = time.perf_counter() + (args.deadline_s or float("inf"))
    reporter = PrintReporter()
    run = Run(Path(ws.runs_dir) / args.name)
    summary: dict = {"model": args.model, "overrides": overrides}
    start = time.perf_counter()

    def train(folds: int) -> None:
        """Train up to `folds` more folds, one call each, starting none after the
        deadline; the run is packed into --out after each."""
        for _ in range(folds):
            left = [k for k in range(args.folds) if run.fold_summary(k) is None]
            if not left or time.perf_counter() > deadline:
                break
            cv.run_cv(ws, dataclasses.replace(options, folds_to_train=(left[0],)), reporter)
            pack_run(run, args.out)

    if run.fold_summary(0) is None:
        train(1)
    first = run.fold_summary(0)
    say(f"fold 1 scored {first.score:.4f} in {first.seconds} s")
    if first.score < args.fold1_floor:
        say(f"fold 1 is under {args.fold1_floor}: not worth the other folds")
    else:
        trained = sum(run.fold_summary(k) is not None for k in range(args.folds))
        train(max(0, min(args.stop_after_folds, args.folds) - trained))
    if not run.finished and all(run.fold_summary(k) for k in range(args.folds)):
        # Every fold restored: cv finishes the run from their predictions, training none.
        cv.run_cv(ws, dataclasses.replace(options, folds_to_train=()), reporter)
    if run.finished:
        summary["oof"] = {"score": run.scores.score, "threshold": run.scores.threshold}
        say(f"CV done: OOF {summary['oof']['score']:.4f} at threshold "
            f"{summary['oof']['threshold']}")
        pack_run(run, args.out)
        summary["submission"] = make_submission(ws, run, args.out)
        if args.timing_images:
            spec, settings = cv.prepare(ws, options)
            images = timing_images(data.load_test(ws.data_dir).images, args.timing_images)
            summary["prediction"] = time_prediction(run, spec, settings, images)
    else:
        say(f"stopped after {time.perf_counter() - start:.0f} s; finished folds are kept")
    summary["seconds_this_call"] = round(time.perf_counter() - start, 1)
    folds = [s for k in range(args.folds) if (s := run.fold_summary(k))]
    # Images trained per second of the fold's wall time (validation and TTA included).
    summary["folds"] = [dict(dataclasses.asdict(s), images_per_s=round(
        s.train_images * s.epochs_run / s.seconds, 1) if s.seconds else None) for s in folds]
    summary["training_seconds"] = round(sum(s.seconds for s in folds), 1)
    summary["trajectories"] = {
        f"fold_{k + 1}": history[["epoch", "stage", "val_score", "learning_rate"]]
        .round(4).to_dict(orient="list") for k, history in enumerate(run.histories())}
    if run.path.exists():
        summary["settings"] = run.config.settings
        summary["device"] = run.config.device
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
