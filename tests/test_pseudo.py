"""Pseudo-labels: a finished run's or ensemble's confident test predictions train every fold
of a new run as extra images, and never reach a score."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kagglesalt import cv, data
from kagglesalt.cli import cli
from kagglesalt.competition import metric
from kagglesalt.errors import KaggleSaltError
from kagglesalt.progress import Reporter
from kagglesalt.workspace import Workspace, pseudo, runs

EXAMPLES = str(Path(__file__).parent / "plugin_examples")


class Said(Reporter):
    def __init__(self, stop_at_fold=None):
        self.messages, self.stop = [], stop_at_fold

    def message(self, text):
        self.messages.append(text)

    def fold_start(self, fold, folds, epochs, steps):
        if fold == self.stop:
            raise KeyboardInterrupt


UNSURE = 5  # the first test images, which the source is unsure of


def truth_of_the_test_images(data_dir):
    from kagglesalt.competition import submission
    from kagglesalt.data import synth

    table = submission.read(Path(data_dir) / synth.TEST_TRUTH)
    return submission.masks_of(table, list(data.load_test(data_dir).ids))


@pytest.fixture
def with_source(tmp_path, synthetic_master, trained_runs):
    """A finished run whose test predictions are the synthetic test images' hidden masks,
    surely (levels 8 and 248), but for the first few images, where it is unsure (128): a
    tiny model trained for two epochs is unsure everywhere."""
    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "submissions")
    run = trained_runs(ws, "source", seed=1)
    levels = np.where(truth_of_the_test_images(ws.data_dir), 248, 8).astype(np.uint8)
    levels[:UNSURE] = 128
    np.save(run.path / "test.npy", levels)
    return ws


def options(name, source="source", **more):
    return cv.CVOptions("tiny", 2, name, EXAMPLES, {"seed": 2, "epochs": 2}, pseudo=source,
                        pseudo_confidence=more.pop("confidence", 0.97), **more)


def test_an_image_is_confident_when_enough_of_its_pixels_are_far_from_the_threshold():
    levels = np.full((3, 101, 101), 10, np.uint8)  # sure: no salt
    levels[1, :50] = 250  # sure salt over half of it
    levels[2, :20] = 128  # a fifth of it at the threshold
    assert pseudo.confident(levels, 0.5, 0.9).tolist() == [True, True, False]
    assert pseudo.confident(levels, 0.5, 0.75).tolist() == [True, True, True]


def test_pseudo_labels_train_every_fold_and_never_reach_a_score(with_source):
    ws = with_source
    said = Said()
    run = cv.run_cv(ws, options("pseudo-run"), said)
    record = run.config.pseudo
    test = data.load_test(ws.data_dir)
    train = data.load_train(ws.data_dir)
    assert record["source"] == "run source" and record["of"] == len(test)
    assert record["images"] == len(test) - UNSURE
    chosen = pseudo.select(ws, "source", 0.97, list(test.ids), test.images,
                           train.fingerprint(), "another")
    truth = truth_of_the_test_images(ws.data_dir)[UNSURE:]
    rule = runs.open_run(ws.runs_dir, "source").postprocess()
    assert np.array_equal(chosen.images, test.images[UNSURE:])
    assert np.array_equal(chosen.masks, rule(truth))  # the source's masks, post-processed
    assert any(m.startswith(f"Pseudo-labels: {record['images']} of {len(test)} test images "
                            "from run source") for m in said.messages)
    for k in range(2):
        fold = run.finished_fold(k)
        real = int((run.folds()["fold"] != k).sum())
        assert fold.train_images == real + record["images"]  # the extra images trained
        assert fold.valid_images == len(train) - real  # scored on real labels only
    assert list(run.folds()["id"]) == list(train.ids)  # no test id among the folds
    oof = run.oof()
    assert oof.shape == train.truth.shape
    assert run.scores.score == pytest.approx(
        metric.score(train.truth, metric.binarize(oof, run.threshold)))


def test_a_source_that_is_the_run_itself_or_of_other_data_is_refused_in_one_line(
        with_source):
    ws = with_source
    with pytest.raises(KaggleSaltError, match="made of run source itself"):
        cv.run_cv(ws, options("source"))
    config = ws.runs_dir / "source" / "config.json"
    values = json.loads(config.read_text())
    values["data"]["fingerprint"] = "0" * 16
    config.write_text(json.dumps(values))
    with pytest.raises(KaggleSaltError, match="was made from other data"):
        cv.run_cv(ws, options("elsewhere"))
    with pytest.raises(KaggleSaltError, match="no run 'nothing'"):
        cv.run_cv(ws, options("nowhere", source="nothing"))
    assert sorted(p.name for p in ws.runs_dir.iterdir()) == ["source"]


def test_a_pseudo_run_killed_resumes_like_any_run_and_keeps_its_source(with_source):
    ws = with_source
    with pytest.raises(KeyboardInterrupt):
        cv.run_cv(ws, options("resumed"), Said(stop_at_fold=1))
    said = Said()
    run = cv.run_cv(ws, options("resumed"), said)
    assert any(m.startswith("fold 1/2 already trained") for m in said.messages)
    assert run.finished and run.config.pseudo["source"] == "run source"
    with pytest.raises(KaggleSaltError, match="exists with different pseudo-labels"):
        cv.run_cv(ws, options("resumed", confidence=0.5))
    np.save(ws.runs_dir / "source" / "test.npy",
            np.full(np.load(ws.runs_dir / "source" / "test.npy").shape, 128, np.uint8))
    with pytest.raises(KaggleSaltError, match="no test image of run source has 97% of its "
                                              "pixels sure: lower pseudo_confidence=0.97"):
        cv.run_cv(ws, options("unsure"))


def test_the_command_line_takes_an_ensemble_as_source_and_runs_shows_it(with_source):
    ws = with_source
    base = ["--data-dir", str(ws.data_dir), "--runs-dir", str(ws.runs_dir),
            "--submissions-dir", str(ws.submissions_dir)]
    assert CliRunner().invoke(cli, [*base, "ensemble", "source", "--name", "blend"]
                              ).exit_code == 0
    result = CliRunner().invoke(cli, [*base, "cv", "--model", "tiny", "--plugins-dir",
                                      EXAMPLES, "--folds", "2", "--epochs", "1", "--name",
                                      "student", "--pseudo", "submissions/blend"])
    assert result.exit_code == 0, result.output
    listing = CliRunner().invoke(cli, [*base, "runs"]).output
    assert any("student" in line and "tiny +pseudo" in line for line in listing.splitlines())
    compared = CliRunner().invoke(cli, [*base, "runs", "source", "student"]).output
    assert "ensemble blend" in compared
