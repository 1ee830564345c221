from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kagglesalt import data, ensemble
from kagglesalt.cli import cli
from kagglesalt.competition import metric, postprocess, submission
from kagglesalt.data import synth
from kagglesalt.errors import KaggleSaltError
from kagglesalt.workspace import Workspace, submissions
from tests import reference

EXAMPLES = str(Path(__file__).parent / "plugin_examples")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, synthetic_master, trained_runs):
    """Two runs of different widths with the same folds, and one with other folds."""
    root = tmp_path_factory.mktemp("ensemble")
    ws = Workspace(synthetic_master, root / "runs", root / "submissions")
    a = trained_runs(ws, "first", seed=1)
    b = trained_runs(ws, "wide", seed=1, params={"width": 6})
    other = trained_runs(ws, "other-folds", seed=6)
    return ws, a, b, other


def test_two_runs_make_a_valid_submission_scored_on_the_hidden_truth(two_runs):
    ws, a, b, _ = two_runs
    result = ensemble.run_ensemble(ws, ["first", "wide"], name="both")
    table = pd.read_csv(result.path, dtype=str, keep_default_na=False)
    sample = pd.read_csv(ws.data_dir / "sample_submission.csv", dtype=str)
    assert list(table.columns) == ["id", "rle_mask"]
    assert list(table["id"]) == list(sample["id"])
    truth = pd.read_csv(ws.data_dir / synth.TEST_TRUTH, dtype=str, keep_default_na=False)
    truth = dict(zip(truth["id"], truth["rle_mask"], strict=True))
    ours = np.array([reference.decode(r) for r in table["rle_mask"]])
    hidden = [reference.decode(truth[i]) for i in table["id"]]
    # The CSV holds the weighted mean of the runs' test levels, cut at the OOF threshold and
    # post-processed, and scores on the hidden masks what `kagglesalt score` says it does.
    weights = [m.weight for m in result.members]
    expected = result.postprocess(metric.binarize(
        metric.combine([a.test(), b.test()], weights), result.threshold))
    assert np.array_equal(ours, expected)
    assert submission.score_files(result.path, ws.data_dir / synth.TEST_TRUTH)[0] == \
        pytest.approx(reference.score(hidden, ours), abs=1e-12)
    # Its OOF score is that of the same rule on the runs' out-of-fold levels, scored by the
    # reference implementation of the metric.
    train = data.load_train(ws.data_dir)
    oof = result.postprocess(metric.binarize(metric.combine([a.oof(), b.oof()], weights),
                                             result.threshold))
    assert result.oof_score == pytest.approx(reference.score(list(train.truth), oof),
                                             abs=1e-12)
    assert sum(m.weight for m in result.members) == pytest.approx(1.0)
    row = submissions.Ledger(ws.submissions_dir).read().set_index("file").loc["both.csv"]
    assert float(row["oof_score"]) == pytest.approx(result.oof_score, abs=1e-6)
    assert row["sha256"] == submissions.sha256(result.path)


def test_a_single_run_ensemble_reproduces_its_oof_score_before_post_processing(two_runs):
    ws, a, _, _ = two_runs
    result = ensemble.run_ensemble(ws, ["first"], name="first-alone")
    assert result.threshold_score == pytest.approx(a.scores.score, abs=1e-12)
    assert result.threshold == a.scores.threshold


def test_runs_with_different_folds_are_refused(two_runs):
    ws, *_ = two_runs
    with pytest.raises(KaggleSaltError, match="different fold assignments"):
        ensemble.run_ensemble(ws, ["first", "other-folds"])


def test_given_weights_are_used_and_checked(two_runs):
    ws, *_ = two_runs
    result = ensemble.run_ensemble(ws, ["first", "wide"], weights=[3, 1], name="weighted")
    assert [m.weight for m in result.members] == [0.75, 0.25]
    with pytest.raises(KaggleSaltError, match="2 runs"):
        ensemble.run_ensemble(ws, ["first", "wide"], weights=[1.0])


def test_the_command_defaults_to_the_latest_run_and_prints_the_table(two_runs):
    ws, *_ = two_runs
    result = CliRunner().invoke(cli, [
        "--data-dir", str(ws.data_dir), "--runs-dir", str(ws.runs_dir),
        "--submissions-dir", str(ws.submissions_dir), "ensemble", "--name", "latest"])
    assert result.exit_code == 0, result.output
    assert "other-folds" in result.output and "ensemble" in result.output
    again = CliRunner().invoke(cli, [
        "--data-dir", str(ws.data_dir), "--runs-dir", str(ws.runs_dir),
        "--submissions-dir", str(ws.submissions_dir), "ensemble", "--name", "latest"])
    assert again.exit_code == 1 and "exists" in again.output


def test_weights_are_fitted_for_more_than_three_runs():
    rng = np.random.default_rng(0)
    truth = np.zeros((40, 101, 101), bool)
    for m in truth[10:]:
        top, left = rng.integers(0, 60, 2)
        m[top:top + 30, left:left + 30] = True
    right = (truth * 200 + 20).astype(np.uint8)
    noise = [rng.integers(0, 256, truth.shape).astype(np.uint8) for _ in range(4)]
    weights = ensemble.fit_weights(truth, [noise[0], noise[1], right, noise[2], noise[3]])
    assert len(weights) == 5 and sum(weights) == pytest.approx(1.0)
    assert weights[2] == max(weights) and weights[2] > 0.5
    assert metric.threshold_curve(truth, metric.combine(
        [noise[0], noise[1], right, noise[2], noise[3]], weights)).score == 1.0


def test_threshold_and_post_processing_can_be_given(two_runs):
    ws, a, _, _ = two_runs
    result = ensemble.run_ensemble(ws, ["first"], name="given", threshold=0.3,
                                   post=ensemble.parse_postprocess("min_component=5,min_area=7"))
    assert result.threshold == 0.3 and result.postprocess == postprocess.PostProcess(5, 7)
    assert "threshold and post-processing given" in result.chosen
    oof = a.oof()
    expected = metric.score(data.load_train(ws.data_dir).masks,
                            postprocess.PostProcess(5, 7)(metric.binarize(oof, 0.3)))
    assert result.oof_score == pytest.approx(expected)
    record = submissions.read_ensemble(result.path)
    assert record.threshold == 0.3 and record.postprocess == {"min_component": 5,
                                                              "min_area": 7}
    none = ensemble.run_ensemble(ws, ["first"], name="plain", post="none")
    assert none.postprocess == postprocess.PostProcess() and none.oof_score == \
        pytest.approx(none.threshold_score)
    with pytest.raises(KaggleSaltError, match="post='big'"):
        ensemble.parse_postprocess("big")
