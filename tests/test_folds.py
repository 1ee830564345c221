import numpy as np
import pytest

from kagglesalt.data import folds
from kagglesalt.errors import KaggleSaltError


def test_coverage_classes_put_empty_masks_apart():
    classes = folds.coverage_class(np.array([0.0, 0.001, 0.1, 0.11, 0.95, 1.0]))
    assert list(classes) == [0, 1, 1, 2, 10, 10]


def test_folds_are_balanced_by_coverage_class_and_deterministic():
    rng = np.random.default_rng(0)
    coverage = np.where(rng.random(1000) < 0.39, 0, rng.random(1000))
    assignment = folds.assign_folds(coverage, 5, seed=1)
    assert (assignment == folds.assign_folds(coverage, 5, seed=1)).all()
    assert (assignment != folds.assign_folds(coverage, 5, seed=2)).any()
    assert sorted(np.bincount(assignment)) == [200] * 5
    empties = np.bincount(assignment[coverage == 0], minlength=5)
    assert empties.max() - empties.min() <= 1


def test_tiny_sets_still_get_every_fold():
    assert set(folds.assign_folds(np.linspace(0, 1, 6), 3)) == {0, 1, 2}


def test_impossible_fold_counts_are_refused():
    with pytest.raises(KaggleSaltError, match="cannot make 5 folds"):
        folds.assign_folds(np.zeros(3), 5)
    with pytest.raises(KaggleSaltError, match="at least 2"):
        folds.assign_folds(np.zeros(10), 1)


def test_folds_csv_round_trips(tmp_path):
    ids = np.array(["a", "b", "c"])
    folds.write_folds(tmp_path / "folds.csv", ids, np.array([0, 1, 0]))
    table = folds.read_folds(tmp_path / "folds.csv")
    assert list(table.columns) == ["id", "fold"] and list(table["fold"]) == [0, 1, 0]
