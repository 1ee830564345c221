import cv2
import numpy as np
import pandas as pd
import pytest

from kagglesalt import data
from kagglesalt.competition import rle
from kagglesalt.data import synth
from kagglesalt.errors import KaggleSaltError


def test_writes_the_exact_kaggle_layout(synthetic_master):
    root = synthetic_master
    for name in ("train.csv", "depths.csv", "sample_submission.csv"):
        assert (root / name).is_file()
    image = cv2.imread(str(next((root / "train" / "images").glob("*.png"))),
                       cv2.IMREAD_UNCHANGED)
    assert image.shape == (101, 101, 3) and image.dtype == np.uint8
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
    mask = cv2.imread(str(next((root / "train" / "masks").glob("*.png"))), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint16 and set(np.unique(mask)) <= {0, 65535}
    depths = pd.read_csv(root / "depths.csv", dtype={"id": str})
    assert len(depths) == 150 and list(depths.columns) == ["id", "z"]
    sample = pd.read_csv(root / "sample_submission.csv", dtype=str)
    assert len(sample) == 30 and set(sample["rle_mask"]) == {"1 1"}


def test_is_deterministic_by_seed(tmp_path):
    a = data.load_train(synth.generate(tmp_path / "a", 20, 0, seed=3))
    b = data.load_train(synth.generate(tmp_path / "b", 20, 0, seed=3))
    c = data.load_train(synth.generate(tmp_path / "c", 20, 0, seed=4))
    assert list(a.ids) == list(b.ids) and (a.images == b.images).all()
    assert list(a.ids) != list(c.ids)


def test_coverage_is_spread_like_the_real_set():
    rng = np.random.default_rng(0)
    coverage = np.array([synth.salt_mask(rng, synth._coverage_target(rng)).mean()
                         for _ in range(2000)])
    assert 0.35 < (coverage == 0).mean() < 0.43
    salty = coverage[coverage > 0]
    assert (salty < 0.1).mean() > 0.15 and (salty > 0.9).mean() > 0.1
    assert np.histogram(salty, bins=10, range=(0, 1))[0].min() > 0


def test_salt_interiors_are_quieter_than_sediments():
    rng = np.random.default_rng(1)
    mask = synth.salt_mask(rng, 0.5)
    image = synth.seismic_image(rng, mask).astype(float)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    outer = ~cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert image[inner].std() < image[outer].std()


def test_refuses_to_overwrite_without_force(tmp_path):
    synth.generate(tmp_path / "d", 3, 1)
    with pytest.raises(KaggleSaltError, match="use force=True to replace it"):
        synth.generate(tmp_path / "d", 3, 1)
    synth.generate(tmp_path / "d", 4, 1, force=True)
    assert len(pd.read_csv(tmp_path / "d" / "train.csv")) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no staging folders left


def test_masks_match_train_csv(synthetic_master):
    train = data.load_train(synthetic_master)
    table = pd.read_csv(synthetic_master / "train.csv", dtype=str, keep_default_na=False)
    by_id = dict(zip(table["id"], table["rle_mask"], strict=True))
    assert rle.encode(train.masks) == [by_id[i] for i in train.ids]
