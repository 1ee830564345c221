from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kagglesalt import cv, ensemble, ledger, plugins, synth
from kagglesalt.cli import cli
from kagglesalt.errors import KaggleSaltError
from kagglesalt.workspace import Workspace
from tests import reference

EXAMPLES = str(Path(__file__).parent / "plugin_examples")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, synthetic_master):
    """Two runs of different widths with the same folds, and one with other folds."""
    plugins.reset()
    root = tmp_path_factory.mktemp("ensemble")
    ws = Workspace(synthetic_master, root / "runs", root / "submissions")
    def run(name, **settings):
        return cv.run_cv(ws, cv.CVOptions("tiny", 2, name, EXAMPLES,
                                          {"epochs": 2, "seed": 5, **settings}))

    a = run("narrow", params={"width": 3})
    b = run("wide", params={"width": 6})
    other = run("other-folds", seed=6)
    return ws, a, b, other


def test_two_runs_make_a_valid_submission_scored_on_the_hidden_truth(two_runs):
    ws, a, b, _ = two_runs
    result = ensemble.run_ensemble(ws, ["narrow", "wide"], name="both")
    table = pd.read_csv(result.path, dtype=str, keep_default_na=False)
    sample = pd.read_csv(ws.data_dir / "sample_submission.csv", dtype=str)
    assert list(table.columns) == ["id", "rle_mask"]
    assert list(table["id"]) == list(sample["id"])
    truth = pd.read_csv(ws.data_dir / synth.TEST_TRUTH, dtype=str, keep_default_na=False)
    truth = dict(zip(truth["id"], truth["rle_mask"], strict=True))
    ours = [reference.decode(r) for r in table["rle_mask"]]
    hidden = [reference.decode(truth[i]) for i in table["id"]]
    assert 0 <= reference.score(hidden, ours) <= 1
    best_single = max(a.scores["oof"]["score"], b.scores["oof"]["score"])
    assert result.oof_score >= best_single
    assert sum(m.weight for m in result.members) == pytest.approx(1.0)
    row = ledger.read(ws.submissions_dir).set_index("file").loc["both.csv"]
    assert float(row["oof_score"]) == pytest.approx(result.oof_score, abs=1e-6)
    assert row["sha256"] == ledger.sha256(result.path)


def test_a_single_run_ensemble_reproduces_its_oof_score_before_post_processing(two_runs):
    ws, a, _, _ = two_runs
    result = ensemble.run_ensemble(ws, ["narrow"], name="narrow-alone")
    assert result.threshold_score == pytest.approx(a.scores["oof"]["score"], abs=1e-12)
    assert result.threshold == a.scores["oof"]["threshold"]


def test_runs_with_different_folds_are_refused(two_runs):
    ws, *_ = two_runs
    with pytest.raises(KaggleSaltError, match="different fold assignments"):
        ensemble.run_ensemble(ws, ["narrow", "other-folds"])


def test_given_weights_are_used_and_checked(two_runs):
    ws, *_ = two_runs
    result = ensemble.run_ensemble(ws, ["narrow", "wide"], weights=[3, 1], name="weighted")
    assert [m.weight for m in result.members] == [0.75, 0.25]
    with pytest.raises(KaggleSaltError, match="2 runs"):
        ensemble.run_ensemble(ws, ["narrow", "wide"], weights=[1.0])


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


def test_post_processing_drops_specks_and_near_empty_masks():
    from kagglesalt.postprocess import PostProcess

    masks = np.zeros((2, 20, 20), bool)
    masks[0, 2:12, 2:12] = True  # 100 px body
    masks[0, 15, 15] = True  # 1 px speck
    masks[1, 0:3, 0:3] = True  # 9 px mask in all
    out = PostProcess(min_component=5, min_area=20)(masks)
    assert out[0].sum() == 100 and not out[1].any()


def test_the_demo_runs_the_whole_workflow_from_an_empty_folder(tmp_path, monkeypatch):
    from kagglesalt import demo

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "TRAIN_SIZES", (60,))
    monkeypatch.setattr(demo, "TEST_IMAGES", 12)
    for name in ("MIN_EPOCHS", "MAX_EPOCHS"):
        monkeypatch.setattr(demo, name, 1)
    result = CliRunner().invoke(cli, ["demo", "--minutes", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "generating the embedded default, 60 synthetic training and 12 test" in text
    assert "OOF score" in text and "Test score" in text and "kagglesalt submit" in text
    written = list((tmp_path / "submissions").glob("demo-unet-k2-e1-*.csv"))
    assert len(written) == 1
    table = pd.read_csv(written[0], dtype=str, keep_default_na=False)
    sample = pd.read_csv(tmp_path / "data" / "sample_submission.csv", dtype=str)
    assert list(table["id"]) == list(sample["id"])
