import numpy as np
import pytest

from kagglesalt.competition import metric
from tests import reference

reference_score = reference.score


def square(lo, hi, size=10):
    m = np.zeros((size, size), bool)
    m[lo:hi, lo:hi] = True
    return m


def test_empty_against_empty_scores_one_and_one_empty_side_scores_zero():
    empty, salt = np.zeros((1, 10, 10), bool), square(2, 5)[None]
    assert metric.score(empty, empty) == 1.0
    assert metric.score(empty, salt) == 0.0
    assert metric.score(salt, empty) == 0.0


def test_score_is_the_fraction_of_iou_thresholds_exceeded():
    truth = np.zeros((1, 10, 10), bool)
    truth[0, :, :4] = True  # 40 pixels
    pred = np.zeros_like(truth)
    pred[0, :, :3] = True  # IoU 30/40 = 0.75: exceeds 0.50..0.70, not 0.75
    assert metric.score(truth, pred) == pytest.approx(0.5)


def test_iou_exactly_on_a_threshold_does_not_pass_it():
    truth = np.zeros((1, 20, 20), bool)
    truth[0, 0, :20] = True
    pred = np.zeros_like(truth)
    pred[0, 0, :11] = True  # IoU = 11/20 = 0.55 exactly
    assert metric.score(truth, pred) == pytest.approx(0.1)


def test_agrees_with_the_reference_on_random_masks():
    rng = np.random.default_rng(1)
    truth = rng.random((300, 12, 12)) < rng.random((300, 1, 1))
    pred = truth ^ (rng.random(truth.shape) < rng.random((300, 1, 1)) * 0.3)
    pred[:20] = False
    truth[10:30] = False
    assert metric.score(truth, pred) == pytest.approx(reference_score(truth, pred), abs=1e-12)


def test_threshold_curve_equals_scoring_each_threshold_on_levels_and_floats():
    rng = np.random.default_rng(2)
    truth = rng.random((60, 16, 16)) < 0.4
    truth[:10] = False
    noisy = np.clip(truth + rng.normal(0, 0.45, truth.shape), 0, 1).astype(np.float32)
    thresholds = np.linspace(0.05, 0.95, 19)
    levels = metric.to_levels(noisy)
    by_levels = metric.threshold_curve(truth, levels, thresholds)
    expected = [reference_score(truth, metric.binarize(levels, t)) for t in thresholds]
    assert by_levels.scores == pytest.approx(expected, abs=1e-12)
    by_floats = metric.threshold_curve(truth, noisy, thresholds)
    expected = [reference_score(truth, noisy > t) for t in thresholds]
    assert by_floats.scores == pytest.approx(expected, abs=1e-12)
    assert by_floats.threshold == thresholds[int(np.argmax(expected))]
    assert by_floats.score == max(expected)


@pytest.mark.real_data
def test_agrees_with_the_reference_on_real_masks_against_perturbed_predictions(real_train):
    rng = np.random.default_rng(3)
    truth = real_train.masks[:800]
    shift = np.roll(truth, rng.integers(-3, 4), axis=2)
    flips = rng.random(truth.shape) < 0.02
    pred = shift ^ flips
    pred[::7] = False
    assert metric.score(truth, pred) == pytest.approx(reference_score(truth, pred), abs=1e-9)


def test_empty_masks_score_the_share_of_empty_images():
    truth = np.zeros((4, 101, 101), bool)
    truth[1, :10, :10] = truth[3, 50:, :] = True
    assert metric.empty_score(truth) == 0.5
    assert metric.below_empty(0.5, 0.5) and metric.below_empty(0.51, 0.5) is None
    assert metric.below_empty(0.1, None) is None
