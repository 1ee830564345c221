"""One training epoch of a shipped model on the real images, on this machine's CPU.

    python bench/bench_train_cpu.py [--data ../shared/tgs-salt] [--model unet] [--images 3200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import keras

from kagglesalt import data, inputs, losses, plugins
from kagglesalt.augment import Augment
from kagglesalt.train import Batches


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).parents[2] / "shared" / "tgs-salt")
    parser.add_argument("--model", default="unet")
    parser.add_argument("--images", type=int, default=3200)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    spec = plugins.get_model(args.model)
    size, mode = spec.default("input_size"), spec.default("input_mode")
    with tempfile.TemporaryDirectory() as tmp:
        train = data.load_train(args.data, cache_dir=tmp)
    x = inputs.to_input(train.images[: args.images], size, mode)
    y = (inputs.to_input(train.masks[: args.images], size, mode) > 0.5).astype("float32")
    model = spec.build(input_size=size, **spec.params)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=losses.get(spec.default("loss").split("+")[0], spec.default("logits")))
    batches = Batches(x, y, args.batch_size, Augment(), 0)
    model.fit(Batches(x[:64], y[:64], args.batch_size, Augment(), 0), epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(batches, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    print(f"{args.model} ({model.count_params():,} params), {keras.backend.backend()}, "
          f"batch {args.batch_size}: one epoch of {len(x)} images in {seconds:.1f} s "
          f"= {len(x) / seconds:.1f} images/s")


if __name__ == "__main__":
    main()
