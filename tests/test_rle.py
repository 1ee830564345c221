import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kagglesalt.competition import rle


def test_runs_go_down_columns_and_are_one_indexed():
    mask = np.zeros((3, 3), bool)
    mask[0:2, 0] = True  # pixels 1 and 2 in column-major order
    mask[2, 1] = True  # pixel 6
    assert rle.encode(mask) == "1 2 6 1"
    assert (rle.decode("1 2 6 1", (3, 3)) == mask).all()


def test_empty_mask_is_empty_string_and_full_mask_one_run():
    assert rle.encode(np.zeros((101, 101), bool)) == ""
    assert rle.encode(np.ones((101, 101), bool)) == "1 10201"
    assert not rle.decode("").any()


def test_runs_do_not_join_across_masks_in_a_stack():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :, -1] = True  # last column of the first mask
    masks[1, :, 0] = True  # first column of the second
    assert rle.encode(masks) == ["13 4", "1 4"]


@settings(max_examples=200, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 6), st.integers(1, 12), st.integers(1, 12))))
def test_encode_then_decode_round_trips(masks):
    encoded = rle.encode(masks)
    decoded = rle.decode_many(encoded, masks.shape[1:])
    assert (decoded == masks).all()


@settings(max_examples=100, deadline=None)
@given(arrays(bool, (8, 8)))
def test_encoded_runs_are_ascending_and_separated(mask):
    starts, lengths = rle.parse(rle.encode(mask), 64)
    assert (starts[1:] > starts[:-1] + lengths[:-1]).all()


@pytest.mark.parametrize("text, reason", [
    ("1", "odd number"),
    ("1 x", "not an integer"),
    ("0 3", "below 1"),
    ("5 0", "not positive"),
    ("10200 5", "ends past"),
    ("50 2 10 2", "not ascending"),
    ("10 5 12 2", "overlap"),
])
def test_malformed_strings_are_refused_with_the_reason(text, reason):
    with pytest.raises(rle.RLEError, match=reason):
        rle.decode(text)


def test_decode_many_names_the_id_of_a_bad_string():
    with pytest.raises(rle.RLEError, match="id b2"):
        rle.decode_many(["1 1", "1"], ids=["a1", "b2"])


@pytest.mark.real_data
def test_every_real_train_csv_row_decodes_to_its_png_mask(real_data, real_train):
    table = pd.read_csv(real_data / "train.csv", dtype=str, keep_default_na=False)
    by_id = dict(zip(table["id"], table["rle_mask"], strict=True))
    decoded = rle.decode_many([by_id[i] for i in real_train.ids])
    assert len(decoded) == 3217
    assert (decoded == real_train.masks).all()
    assert rle.encode(real_train.masks) == [by_id[i] for i in real_train.ids]
