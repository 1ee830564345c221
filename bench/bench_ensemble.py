"""Ensembling at competition size: 4,000 train and 18,000 test images, several runs.

    python bench/bench_ensemble.py [--runs 3]

Runs are written directly (OOF = noisy, blurred truth; test = smooth random maps) so that
only the ensemble step is measured: its time, its peak of traced memory (numpy arrays
included), the report of the ensemble, and the time to write the 18,000-row submission CSV.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kagglesalt import data, ensemble, report
from kagglesalt.atomic import save_npy, write_json
from kagglesalt.competition import submission
from kagglesalt.data import folds, synth
from kagglesalt.workspace import Workspace


def fake_run(root: Path, name: str, train: data.Split, test: data.Split, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path = root / name
    path.mkdir(parents=True)
    assignment = folds.assign_folds(train.coverage, 5, 42)
    folds.write_folds(path / "folds.csv", train.ids, assignment)
    pd.DataFrame({"id": test.ids}).to_csv(path / "test_ids.csv", index=False)
    noisy = train.masks * 0.7 + rng.random(train.masks.shape, dtype=np.float32) * 0.5
    oof = np.stack([cv2.GaussianBlur(m.astype(np.float32), (0, 0), 2) for m in noisy])
    save_npy(path / "oof.npy", np.clip(oof * 255, 0, 255).astype(np.uint8))
    smooth = np.stack([cv2.GaussianBlur(rng.random((101, 101), dtype=np.float32), (0, 0), 8)
                       for _ in range(1000)])
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    tiled = np.resize((smooth * 255).astype(np.uint8), (len(test), 101, 101))
    save_npy(path / "test.npy", tiled)
    write_json(path / "config.json", {"name": name, "data": {"fingerprint": train.fingerprint()}})
    write_json(path / "scores.json", {"oof": {"score": 0.0, "threshold": 0.5}, "folds": []})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synth.generate(root / "data", 4000, 18000)
        train, test = data.load_train(root / "data"), data.load_test(root / "data")
        names = [f"run{k}" for k in range(args.runs)]
        for k, name in enumerate(names):
            fake_run(root / "runs", name, train, test, k)
        ws = Workspace(root / "data", root / "runs", root / "submissions")
        weights = [1.0 / args.runs] * args.runs
        for label, w in (("given weights", weights), ("weights fitted on OOF", "auto")):
            tracemalloc.start()
            start = time.perf_counter()
            result = ensemble.run_ensemble(ws, names, w, name=f"bench-{len(label)}")
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"ensemble of {args.runs} runs ({label}): {seconds:.1f} s, peak traced "
                  f"memory {peak / 2**20:.0f} MiB, OOF {result.oof_score:.4f}")
        start = time.perf_counter()
        page = report.build(ws)
        print(f"report of the {len(train)}-image ensemble: {time.perf_counter() - start:.1f} s "
              f"({page.stat().st_size / 2**20:.1f} MiB)")
        masks = np.asarray(np.load(root / "runs" / "run0" / "test.npy", mmap_mode="r")) > 128
        start = time.perf_counter()
        submission.write(root / "sub.csv", test.ids, masks)
        print(f"write the {len(test.ids)}-row CSV, RLE included: "
              f"{time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
