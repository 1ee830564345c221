"""A model's training step with Keras's batch norm against kagglesalt's fused one, and the
symmetric Lovász with two sorts against one, timed back to back in one process.

    python bench/bench_step.py [--model unet_lite] [--rounds 6] [--steps 12] [--set k=v ...]

Each variant is its own compiled model of the same architecture and batch; the rounds
alternate between them (a window of `--steps` steps each, after a warm-up), so a machine
that drifts during the run drifts for all of them alike. Figures are the median window's
training images per second, and each variant's ratio to the first; they go to
bench/RESULTS.md with the machine and the day.
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import keras
import numpy as np
from keras import ops

from kagglesalt import plugins
from kagglesalt.model import experiments, layers, losses
from kagglesalt.model.backend import device, keep_freed_memory
from kagglesalt.model.fold import build_models, training_loss
from kagglesalt.model.schedule import stage_plan
from kagglesalt.model.settings import key_values


def two_sort_symmetric_lovasz(crop: tuple[int, int] | None):
    """The symmetric Lovász as it was: a sort of its own for the inverted term."""
    hinge = lambda e: ops.elu(e) + 1.0  # noqa: E731

    def one(labels, logits):
        errors, labels_sorted = losses._lovasz_sorted(labels, logits)
        return ops.sum(hinge(errors) * losses._lovasz_gradient(labels_sorted), axis=-1)

    def loss(y_true, y_pred):
        labels = ops.cast(losses._flat(y_true), "float32")
        logits = losses._flat(ops.cast(y_pred, "float32"))
        return ops.mean((one(labels, logits) + one(1.0 - labels, -logits)) / 2)
    return losses.cropped(loss, *crop) if crop else loss


def variant(spec, settings, stage, keras_batch_norm: bool, two_sorts: bool):
    if keras_batch_norm:
        with mock.patch.object(layers, "BatchNormalization", keras.layers.BatchNormalization):
            model, _ = build_models(spec, settings)
    else:
        model, _ = build_models(spec, settings)
    compiled = training_loss(stage, settings, len(model.outputs))
    if two_sorts:
        from kagglesalt.model import inputs

        window = inputs.loss_window(settings.input_size, settings.input_mode)
        pixels = two_sort_symmetric_lovasz(window)
        compiled["loss"] = [pixels, *compiled["loss"][1:]] \
            if isinstance(compiled["loss"], list) else pixels
    model.compile(optimizer=keras.optimizers.Adam(stage.learning_rate), **compiled)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="unet_lite")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    keep_freed_memory()
    spec = plugins.get_model(args.model)
    # --set keys as `cv --set` reads them
    settings = spec.training_settings(experiments.with_sets({}, key_values(args.set)))
    stages = {stage.loss: stage for stage in stage_plan(settings, 2)}
    bce, lovasz = stages["bce_dice"], stages.get("lovasz")
    variants = {"bce_dice, Keras batch norm": (bce, True, False),
                "bce_dice, fused batch norm": (bce, False, False)}
    if lovasz and settings.lovasz == "symmetric":
        variants |= {"lovasz, Keras batch norm, two sorts": (lovasz, True, True),
                     "lovasz, fused batch norm, two sorts": (lovasz, False, True),
                     "lovasz, fused batch norm, one sort": (lovasz, False, False)}
    rng = np.random.default_rng(0)
    size, batch = settings.input_size, settings.batch_size
    x = rng.random((batch, size, size, 1), dtype=np.float32)
    y = (rng.random(x.shape) > 0.5).astype(np.float32)
    models = {name: variant(spec, settings, *v) for name, v in variants.items()}
    targets = {name: (y, np.ones((batch, 1), np.float32)) if len(m.outputs) == 2 else y
               for name, m in models.items()}
    for name, model in models.items():  # compile and warm up
        for _ in range(3):
            model.train_on_batch(x, targets[name])
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            began = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, targets[name])
            rates[name].append(args.steps * batch / (time.perf_counter() - began))
    print(f"{args.model}, batch {batch} at {size}x{size}, on {device().describe()}, "
          f"{time.strftime('%Y-%m-%d')}")
    firsts = {"bce_dice": None, "lovasz": None}
    for name, seen in rates.items():
        median = statistics.median(seen)
        loss = name.split(",")[0]
        firsts[loss] = firsts[loss] or median
        print(f"{name:40s} {median:6.1f} images/s  x{median / firsts[loss]:.2f}  "
              f"(windows {min(seen):.1f}-{max(seen):.1f})")


if __name__ == "__main__":
    main()
