"""Training speed, and the framework's overhead over a bare `model.fit`, in one process.

    python bench/bench_train.py [--data ../shared/tgs-salt] [--model unet] [--images 1280]
        [--epochs 4] [--set key=value ...]

Both sides train the same model with the same settings and loss on the same images:
"raw" is `model.fit` on arrays prepared in advance (no augmentation, no validation);
"kagglesalt" is `train.train_fold`, which also augments each batch, scores the held-out
images with the competition metric after every epoch and keeps the best weights. Epoch
times are medians over the epochs after the first (which compiles). On a GPU run it with
KERAS_BACKEND=jax; figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from kagglesalt import data, plugins
from kagglesalt.model import experiments, inputs
from kagglesalt.model.backend import keep_freed_memory
from kagglesalt.model.fold import build_models, train_fold, training_loss
from kagglesalt.model.results import FoldJob
from kagglesalt.model.schedule import stage_plan
from kagglesalt.model.settings import key_values
from kagglesalt.progress import Reporter


class EpochClock(Reporter):
    def __init__(self):
        self.ends: list[float] = []
        self.start = time.perf_counter()

    def epoch_end(self, epoch, row):
        self.ends.append(time.perf_counter())


def median_epoch(ends: list[float], start: float) -> float:
    times = np.diff([start, *ends])
    return float(np.median(times[1:])) if len(times) > 1 else float(times[0])


def raw_fit(spec, settings, images, masks, epochs: int) -> float:
    model, _ = build_models(spec, settings)
    x = inputs.to_input(images, settings.input_size, settings.input_mode)
    y = (inputs.to_input(masks, settings.input_size, settings.input_mode) > 0.5) \
        .astype(np.float32)
    if len(model.outputs) == 2:
        y = (y, masks.reshape(len(masks), -1).max(axis=1, keepdims=True).astype(np.float32))
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                  **training_loss(stage_plan(settings)[0], settings, len(model.outputs)))
    ends: list[float] = []
    clock = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: ends.append(
        time.perf_counter()))
    start = time.perf_counter()
    model.fit(x, y, batch_size=settings.batch_size, epochs=epochs, shuffle=True, verbose=0,
              callbacks=[clock])
    return median_epoch(ends, start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).parents[2] / "shared" / "tgs-salt")
    parser.add_argument("--model", default="unet")
    parser.add_argument("--images", type=int, default=1280, help="training images")
    parser.add_argument("--valid", type=int, default=320, help="held-out images")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a training setting, e.g. --set batch_size=64")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--malloc", choices=("keep", "default"), default="keep",
                        help="keep: as the CLI runs (backend.keep_freed_memory); default: "
                             "glibc's own settings")
    args = parser.parse_args()
    if args.malloc == "keep":
        keep_freed_memory()
    overrides = experiments.with_sets({}, key_values(args.set))  # as `cv --set` reads them
    # One stage, the best epoch kept: validation then runs every epoch (the upper bound of
    # the overhead; unet_deep's own recipe validates every 10th).
    overrides.update(epochs=args.epochs, loss=overrides.get("loss", "bce_dice"),
                     snapshots=0, validate_every=1)
    spec = plugins.get_model(args.model)
    settings = spec.training_settings(overrides)
    with tempfile.TemporaryDirectory() as tmp:
        train = data.load_train(args.data, cache_dir=tmp)
    n, v = args.images, args.valid
    if n + v > len(train):  # a subset (a trial run): its images, split the same way
        n = round(len(train) * n / (n + v))
        v = len(train) - n
        print(f"only {len(train)} images: {n} trained, {v} scored")
    images, masks = train.images[:n], train.masks[:n]
    clock = EpochClock()
    train_fold(spec, settings, FoldJob(images, masks, train.images[n:n + v],
                                       train.masks[n:n + v]), reporter=clock)
    ours = median_epoch(clock.ends, clock.start)
    raw = raw_fit(spec, settings, images, masks, args.epochs)
    steps = len(images) // settings.batch_size
    figures = {"model": args.model, "malloc": args.malloc,
               "backend": keras.backend.backend(), "images": n, "valid": v,
               "batch_size": settings.batch_size,
               "raw_epoch_s": round(raw, 3), "kagglesalt_epoch_s": round(ours, 3),
               "raw_images_per_s": round(steps * settings.batch_size / raw, 1),
               "kagglesalt_images_per_s": round(steps * settings.batch_size / ours, 1),
               "overhead": round(ours / raw - 1, 3)}
    print(f"{args.model}, {figures['backend']}, batch {settings.batch_size}, {n} images "
          f"(+{v} scored each epoch): raw fit {raw:.2f} s/epoch "
          f"({figures['raw_images_per_s']} images/s), kagglesalt {ours:.2f} s/epoch "
          f"({figures['kagglesalt_images_per_s']} images/s): overhead "
          f"{100 * figures['overhead']:+.1f}%")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
