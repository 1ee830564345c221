"""Folds on a local Ray instance against the same folds one after another, and what Ray
itself costs (start, object store, result transfer) at the competition's sizes.

    python bench/bench_ray.py [--data ../shared/tgs-salt] [--train 600] [--epochs 3]

1. Overhead: start a local instance; put 3,217 training images and masks and 18,000 test
   images into the object store; bring back from a task a fold's result of that size (OOF
   and test levels, a model's bytes).
2. Wall time of a 3-fold `kagglesalt cv` of the classic U-Net (64x64) on a synthetic set,
   sequential and on Ray with one CPU per fold, in one process, same seed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from kagglesalt import cv, data, distributed
from kagglesalt.data import synth
from kagglesalt.model.backend import import_keras
from kagglesalt.workspace import Workspace


def overhead(data_dir: Path) -> dict[str, float]:
    import ray

    with tempfile.TemporaryDirectory() as cache:
        train = data.load_train(data_dir, cache_dir=cache)
    test = np.concatenate([train.images] * 6)[:18_000]
    started = time.perf_counter()
    distributed.connect(distributed.LOCAL)
    start_s = time.perf_counter() - started
    started = time.perf_counter()
    refs = [ray.put(a) for a in (train.images, train.masks, test)]
    put_s = time.perf_counter() - started

    @ray.remote(num_cpus=1)
    def fold_result(images, masks, test_images):
        """What a fold sends back: OOF and test levels, one 5M-weight model's bytes."""
        return {"oof": images[: len(images) // 5].copy(), "test": test_images.copy(),
                "model": bytes(20_500_000)}

    ray.get(fold_result.remote(*refs))  # a worker started and warm
    started = time.perf_counter()
    ray.get(fold_result.remote(*refs))
    result_s = time.perf_counter() - started
    return {"ray_start_s": round(start_s, 2), "put_3217_train_18000_test_s": round(put_s, 3),
            "fold_result_roundtrip_s": round(result_s, 3),
            "fold_result_mb": round((test.nbytes + train.images.nbytes / 5 + 20.5e6) / 1e6)}


def folds(n_train: int, epochs: int) -> dict[str, float]:
    settings = {"input_size": 64, "epochs": epochs, "loss": "bce_dice", "batch_size": 16,
                "seed": 3, "params": {"dropout": 0.1}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synth.generate(root / "data", n_train, 200)
        ws = Workspace(root / "data", root / "runs", root / "subs")
        started = time.perf_counter()
        local = cv.run_cv(ws, cv.CVOptions("unet", 3, "local", settings=settings))
        local_s = time.perf_counter() - started
        started = time.perf_counter()
        on_ray = cv.run_cv(ws, cv.CVOptions("unet", 3, "ray", settings=settings,
                                            ray=distributed.LOCAL))
        ray_s = time.perf_counter() - started
        same = local.fold_scores() == on_ray.fold_scores()
    return {"train_images": n_train, "epochs": epochs, "sequential_s": round(local_s, 1),
            "ray_s": round(ray_s, 1), "speedup": round(local_s / ray_s, 2),
            "same_fold_scores": same}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).parents[2] / "shared" / "tgs-salt")
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    import_keras()
    figures = {"overhead": overhead(args.data), "folds": folds(args.train, args.epochs)}
    print(json.dumps(figures, indent=2))
    distributed.shutdown()


if __name__ == "__main__":
    main()
