"""The real competition, packed small for the GPU machine and unpacked there in the Kaggle
layout, so that the GPU run reads the same files a user's `kagglesalt cv` reads.

    python bench/gpu_data.py [--data ../shared/tgs-salt] [--out .devdata/tgs.npz]
        [--subset N]

Packing keeps the decoded arrays (30 MB compressed for 3,217 + 783 images, against 39 MB
for the PNGs): PNG is lossless, so the unpacked layout decodes to the same arrays, and a
run made there has the same data fingerprints as one made on `../shared/tgs-salt` (its
predictions can be ensembled here). `--subset N` keeps the first N training and N // 4 test
images, for trying the GPU script on a CPU. The packed file is never committed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kagglesalt import data
from kagglesalt.competition import rle


def pack(source: Path, out: Path, subset: int | None = None) -> str:
    """Pack the training and test splits of the layout in `source` into `out` (.npz)."""
    with tempfile.TemporaryDirectory() as cache:
        train = data.load_train(source, cache_dir=cache)
        test = data.load_test(source, cache_dir=cache)
    n_train = subset or len(train)
    n_test = len(test) if subset is None else max(1, subset // 4)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, ids=train.ids[:n_train], images=train.images[:n_train],
                        masks=train.masks[:n_train], depths=train.depths[:n_train],
                        test_ids=test.ids[:n_test], test_images=test.images[:n_test],
                        test_depths=test.depths[:n_test])
    return f"{n_train} training and {n_test} test images into {out}"


def write_layout(npz: Path, root: Path) -> None:
    """Write the packed competition into `root` in the Kaggle layout (once)."""
    if (root / "sample_submission.csv").exists():
        return
    arrays = np.load(npz)
    for folder in ("train/images", "train/masks", "test/images"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, image, mask in zip(arrays["ids"], arrays["images"], arrays["masks"], strict=True):
        cv2.imwrite(str(root / "train" / "images" / f"{i}.png"), cv2.merge([image] * 3))
        cv2.imwrite(str(root / "train" / "masks" / f"{i}.png"), mask.astype(np.uint16) * 65535)
    for i, image in zip(arrays["test_ids"], arrays["test_images"], strict=True):
        cv2.imwrite(str(root / "test" / "images" / f"{i}.png"), cv2.merge([image] * 3))
    pd.DataFrame({"id": arrays["ids"], "rle_mask": rle.encode(arrays["masks"])}) \
        .to_csv(root / "train.csv", index=False)
    pd.DataFrame({"id": [*arrays["ids"], *arrays["test_ids"]],
                  "z": np.concatenate([arrays["depths"], arrays["test_depths"]]).astype(int)}) \
        .to_csv(root / "depths.csv", index=False)
    # Written last: its presence marks the layout whole.
    pd.DataFrame({"id": arrays["test_ids"], "rle_mask": "1 1"}) \
        .to_csv(root / "sample_submission.csv", index=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).parents[2] / "shared" / "tgs-salt")
    parser.add_argument("--out", type=Path, default=Path(".devdata") / "tgs.npz")
    parser.add_argument("--subset", type=int, default=None)
    args = parser.parse_args()
    print(pack(args.data, args.out, args.subset))


if __name__ == "__main__":
    main()
