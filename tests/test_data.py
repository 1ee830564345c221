import os

import cv2
import numpy as np
import pandas as pd
import pytest

from kagglesalt import data
from kagglesalt.errors import KaggleSaltError


def test_loads_images_masks_and_depths_of_the_kaggle_layout(synthetic_data):
    train = data.load_train(synthetic_data)
    assert train.images.shape == (120, 101, 101) and train.images.dtype == np.uint8
    assert train.masks.shape == (120, 101, 101) and train.masks.dtype == bool
    assert not np.isnan(train.depths).any()
    table = pd.read_csv(synthetic_data / "train.csv", dtype=str)
    assert sorted(table["id"]) == list(train.ids)
    test = data.load_test(synthetic_data)
    sample = pd.read_csv(synthetic_data / "sample_submission.csv", dtype=str)
    assert list(test.ids) == list(sample["id"]) and test.images.shape == (30, 101, 101)


def test_second_load_comes_from_the_cache_and_a_changed_file_rebuilds_it(synthetic_data):
    first = data.load_train(synthetic_data)
    assert (synthetic_data / ".cache" / "train" / "key.json").exists()
    assert (data.load_train(synthetic_data).images == first.images).all()
    victim = synthetic_data / "train" / "images" / f"{first.ids[0]}.png"
    cv2.imwrite(str(victim), np.full((101, 101, 3), 7, np.uint8))
    os.utime(victim, ns=(1, 1))
    assert (data.load_train(synthetic_data).images[0] == 7).all()


def test_accepts_8_bit_masks(synthetic_data):
    train = data.load_train(synthetic_data)
    i = int(np.argmax(train.masks.reshape(len(train), -1).any(axis=1)))
    path = synthetic_data / "train" / "masks" / f"{train.ids[i]}.png"
    cv2.imwrite(str(path), train.masks[i].astype(np.uint8) * 255)
    assert (data.load_train(synthetic_data).masks[i] == train.masks[i]).all()


def first_id(folder):
    return sorted(p.stem for p in (folder / "train" / "images").glob("*.png"))[0]


def test_refuses_a_train_csv_id_without_an_image(synthetic_data):
    victim = first_id(synthetic_data)
    (synthetic_data / "train" / "images" / f"{victim}.png").unlink()
    (synthetic_data / "train" / "masks" / f"{victim}.png").unlink()
    with pytest.raises(KaggleSaltError, match=f"id {victim} in train.csv has no image"):
        data.load_train(synthetic_data)


def test_refuses_an_image_without_a_mask(synthetic_data):
    victim = first_id(synthetic_data)
    (synthetic_data / "train" / "masks" / f"{victim}.png").unlink()
    with pytest.raises(KaggleSaltError, match=f"image {victim} has no mask"):
        data.load_train(synthetic_data)


def test_refuses_a_corrupt_png_naming_the_file_and_nothing_else(synthetic_data, capfd):
    victim = first_id(synthetic_data)
    path = synthetic_data / "train" / "images" / f"{victim}.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(KaggleSaltError, match=f"{victim}.png is not a readable PNG"):
        data.load_train(synthetic_data)
    out, err = capfd.readouterr()
    assert "WARN" not in out + err and "ERROR" not in out + err  # OpenCV's own lines


def test_an_empty_images_folder_is_one_line(synthetic_data):
    for png in (synthetic_data / "train" / "images").glob("*.png"):
        png.unlink()
    with pytest.raises(KaggleSaltError, match="holds no .png images"):
        data.load_train(synthetic_data)


def test_without_depths_csv_depths_are_unknown(synthetic_data):
    (synthetic_data / "depths.csv").unlink()
    train = data.load_train(synthetic_data)
    assert not train.has_depths and np.isnan(train.depths).all()


def test_refuses_an_image_of_the_wrong_size(synthetic_data):
    victim = first_id(synthetic_data)
    cv2.imwrite(str(synthetic_data / "train" / "images" / f"{victim}.png"),
                np.zeros((128, 128, 3), np.uint8))
    with pytest.raises(KaggleSaltError, match="is 128x128, not 101x101"):
        data.load_train(synthetic_data)


def test_refuses_an_rle_that_disagrees_with_its_mask(synthetic_data):
    table = pd.read_csv(synthetic_data / "train.csv", dtype=str, keep_default_na=False)
    victim = sorted(table["id"])[3]
    table.loc[table["id"] == victim, "rle_mask"] = "1 5"
    table.to_csv(synthetic_data / "train.csv", index=False)
    with pytest.raises(KaggleSaltError, match=f"RLE of id {victim} .* disagrees"):
        data.load_train(synthetic_data)


def test_refuses_a_test_id_without_an_image(synthetic_data):
    sample = pd.read_csv(synthetic_data / "sample_submission.csv", dtype=str)
    (synthetic_data / "test" / "images" / f"{sample['id'][5]}.png").unlink()
    with pytest.raises(KaggleSaltError, match=f"id {sample['id'][5]} in sample_submission"):
        data.load_test(synthetic_data)


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(KaggleSaltError, match="kagglesalt download"):
        data.load_train(tmp_path)


def test_fingerprint_changes_with_the_data(synthetic_data):
    train = data.load_train(synthetic_data)
    assert train.fingerprint() == data.load_train(synthetic_data).fingerprint()
    altered = data.Split(train.ids, train.images, ~train.masks, train.depths)
    assert altered.fingerprint() != train.fingerprint()


@pytest.mark.real_data
def test_reads_the_real_kaggle_files(real_train):
    assert len(real_train) == 3217
    assert (real_train.coverage == 0).sum() == 1263
    assert not np.isnan(real_train.depths).any()


def test_a_cache_damaged_in_place_is_rebuilt_not_used(synthetic_data):
    """Same-size damage keeps the PNGs' names, sizes and times, which the key covers."""
    first = data.load_train(synthetic_data)
    cached = synthetic_data / ".cache" / "train" / "images.npy"
    blob = bytearray(cached.read_bytes())
    blob[-5000:] = bytes(b ^ 0xFF for b in blob[-5000:])
    cached.write_bytes(bytes(blob))
    again = data.load_train(synthetic_data)
    assert np.array_equal(again.images, first.images)
    assert again.fingerprint() == first.fingerprint()
    assert np.array_equal(np.load(cached), first.images)  # and stored whole again
