"""Real training on a GPU: throughput of the shipped models, then a K-fold CV of unet_deep.

    KERAS_BACKEND=jax python bench/bench_gpu.py --npz tgs.npz --out OUT [--epochs 32]

`--npz` holds ids, images, masks and depths of the real training set (made from a Kaggle
download with `np.savez_compressed`); it is written out in the Kaggle layout so that the CV
goes through the same loader, folds and run folder as `kagglesalt cv`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd

from kagglesalt import cv, losses, plugins, rle
from kagglesalt.augment import Augment
from kagglesalt.train import Batches, Reporter
from kagglesalt.workspace import Workspace


def say(text: str) -> None:
    print(text, flush=True)


def write_layout(npz: Path, root: Path) -> None:
    arrays = np.load(npz)
    ids, images, masks, depths = (arrays[k] for k in ("ids", "images", "masks", "depths"))
    (root / "train" / "images").mkdir(parents=True, exist_ok=True)
    (root / "train" / "masks").mkdir(parents=True, exist_ok=True)
    for i, image, mask in zip(ids, images, masks, strict=True):
        cv2.imwrite(str(root / "train" / "images" / f"{i}.png"), cv2.merge([image] * 3))
        cv2.imwrite(str(root / "train" / "masks" / f"{i}.png"), mask.astype(np.uint16) * 65535)
    pd.DataFrame({"id": ids, "rle_mask": rle.encode(masks)}).to_csv(root / "train.csv",
                                                                   index=False)
    pd.DataFrame({"id": ids, "z": depths}).to_csv(root / "depths.csv", index=False)


def throughput(name: str, batch_size: int, n: int, epochs: int = 4) -> float:
    spec = plugins.get_model(name)
    model = spec.build(input_size=128, **spec.params)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=losses.get("bce_dice", spec.default("logits")))
    rng = np.random.default_rng(0)
    x = rng.random((n, 128, 128, 1), dtype=np.float32)
    y = (rng.random((n, 128, 128, 1)) > 0.5).astype(np.float32)
    batches = Batches(x, y, batch_size, Augment(), 0)
    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(batches, epochs=epochs, verbose=0, callbacks=[Clock()])
    rate = n / float(np.median(times[1:]))
    say(f"throughput {name} ({model.count_params():,} params) batch {batch_size}: "
        f"{rate:,.0f} images/s (epoch times {', '.join(f'{t:.2f}' for t in times)})")
    return rate


class PrintReporter(Reporter):
    """Prints epochs; past the deadline it interrupts like Ctrl-C (finished folds are kept)."""

    def __init__(self, deadline: float):
        self.deadline = deadline

    def epoch_end(self, epoch, row):
        if time.perf_counter() > self.deadline:
            raise KeyboardInterrupt
        say(f"  epoch {epoch:3d} [{row['stage']}] loss {row['loss']:.4f} "
            f"val {row['val_score']:.4f} @ {row['val_threshold']:.2f} "
            f"lr {row['learning_rate']:.1e}")

    def fold_end(self, fold, score):
        say(f"fold {fold + 1}: {score:.4f}")

    def message(self, text):
        say(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--npz", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kagglesalt-bench"))
    parser.add_argument("--model", default="unet_deep")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--deadline-s", type=int, default=0,
                        help="stop training after this many seconds, keeping finished folds")
    parser.add_argument("--throughput-images", type=int, default=2048,
                        help="images per timed epoch; 0 skips the throughput figures")
    args = parser.parse_args()
    say(f"keras {keras.__version__} backend {keras.backend.backend()}, python {sys.version}")
    if keras.backend.backend() == "jax":
        import jax
        say(f"devices: {jax.devices()}")
    shutil.rmtree(args.work, ignore_errors=True)
    start = time.perf_counter()
    write_layout(args.npz, args.work / "data")
    say(f"wrote the Kaggle layout in {time.perf_counter() - start:.1f} s")
    figures = {}
    if args.throughput_images:
        for name, batch in (("unet_deep", 128),):
            figures[f"{name}@{batch}"] = throughput(name, batch, args.throughput_images)
    ws = Workspace(args.work / "data", args.out / "runs", args.work / "submissions")
    options = cv.CVOptions(model=args.model, folds=args.folds, epochs=args.epochs,
                           batch_size=args.batch_size, patience=args.epochs)
    start = time.perf_counter()
    summary = {"throughput": figures, "epochs": args.epochs, "batch_size": args.batch_size}
    try:
        deadline = start + (args.deadline_s or float("inf"))
        run = cv.run_cv(ws, options, PrintReporter(deadline))
        summary["oof"] = run.scores["oof"]
        say(f"CV done in {time.perf_counter() - start:.0f} s: "
            f"OOF {summary['oof']['score']:.4f} "
            f"at threshold {summary['oof']['threshold']}")
    except KeyboardInterrupt:
        say(f"deadline reached after {time.perf_counter() - start:.0f} s; finished folds kept")
    runs = list((args.out / "runs").iterdir())
    folds = sorted(runs[0].glob("fold_*/done.json")) if runs else []
    summary["folds"] = [json.loads(p.read_text()) for p in folds]
    summary["seconds"] = time.perf_counter() - start
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    for path in (args.out / "runs").glob("*/fold_*/*"):  # only small files come back
        if path.name in ("model.keras", "test.npy", "oof.npy"):
            path.unlink()



if __name__ == "__main__":
    main()
