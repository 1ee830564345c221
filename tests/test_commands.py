"""The commands a competitor reaches for on finished runs: runs, predict, models NAME."""

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kagglesalt import cv, data, infer, metric, plugins, runs
from kagglesalt.cli import cli
from kagglesalt.workspace import Workspace

EXAMPLES = str(Path(__file__).parent / "plugin_examples")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, synthetic_master):
    plugins.reset()
    root = tmp_path_factory.mktemp("commands")
    ws = Workspace(synthetic_master, root / "runs", root / "submissions")
    for name, settings in (("first", {"epochs": 2}), ("second", {"epochs": 1, "lovasz":
                                                                 "symmetric"})):
        cv.run_cv(ws, cv.CVOptions("tiny", 2, name, EXAMPLES, {"seed": 1, **settings}))
    return ws


def invoke(ws, *args):
    result = CliRunner().invoke(cli, ["--data-dir", str(ws.data_dir), "--runs-dir",
                                      str(ws.runs_dir), *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_runs_lists_every_run_newest_first_with_its_score_and_state(two_runs):
    (two_runs.runs_dir / "second" / "fold_1" / "done.json").rename(
        two_runs.runs_dir / "second" / "done.json.bak")
    try:
        (two_runs.runs_dir / "second" / "scores.json").rename(
            two_runs.runs_dir / "second" / "scores.bak")
        output = invoke(two_runs, "runs")
    finally:
        (two_runs.runs_dir / "second" / "scores.bak").rename(
            two_runs.runs_dir / "second" / "scores.json")
        (two_runs.runs_dir / "second" / "done.json.bak").rename(
            two_runs.runs_dir / "second" / "fold_1" / "done.json")
    lines = [line for line in output.splitlines() if "tiny" in line]
    assert "second" in lines[0] and "first" in lines[1]  # newest first
    assert "1/2 folds" in lines[0]
    first = runs.open_run(two_runs.runs_dir, "first")
    assert f"{first.oof_score:.4f}" in lines[1] and "finished" in lines[1]


def test_runs_compares_runs_side_by_side(two_runs):
    output = invoke(two_runs, "runs", "first", "second")
    assert "settings.epochs" in output and "settings.lovasz" in output
    assert "settings.batch_size" not in output  # the same in both
    first, second = (runs.open_run(two_runs.runs_dir, n) for n in ("first", "second"))
    fold_line = next(line for line in output.splitlines() if "fold 2" in line)
    assert f"{first.fold_scores()[1]:.4f}" in fold_line
    assert f"{second.fold_scores()[1]:.4f}" in fold_line


def test_predict_writes_masks_for_new_images_as_the_run_predicts_its_test_set(two_runs,
                                                                             tmp_path):
    run = runs.open_run(two_runs.runs_dir, "first")
    test = data.load_test(two_runs.data_dir)
    folder = tmp_path / "new"
    folder.mkdir()
    for i, image in zip(test.ids[:6], test.images[:6], strict=True):
        cv2.imwrite(str(folder / f"{i}.png"), image)
    output = invoke(two_runs, "predict", "first", str(folder), "--png",
                    str(tmp_path / "masks"), "--csv", str(tmp_path / "masks.csv"))
    assert "6 masks" in output
    expected = run.postprocess()(metric.binarize(run.test()[:6], run.threshold))
    for i, mask in zip(test.ids[:6], expected, strict=True):
        png = cv2.imread(str(tmp_path / "masks" / f"{i}.png"), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint8 and set(np.unique(png)) <= {0, 255}
        # The run's test.npy is the rounded mean of fold levels; a pixel may fall either
        # side of the threshold by that rounding.
        assert ((png > 0) != mask).sum() <= 3
    table = pd.read_csv(tmp_path / "masks.csv", dtype=str, keep_default_na=False)
    assert list(table["id"]) == sorted(test.ids[:6])


def test_predict_refuses_what_is_not_there(two_runs, tmp_path):
    result = CliRunner().invoke(cli, ["--runs-dir", str(two_runs.runs_dir), "predict",
                                      "first", str(tmp_path / "nothing.png"), "--csv", "x.csv"])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = CliRunner().invoke(cli, ["--runs-dir", str(two_runs.runs_dir), "predict",
                                      "first", str(tmp_path)])
    assert result.exit_code == 2 and "--png FOLDER and/or --csv FILE" in result.output
    with pytest.raises(Exception, match="holds no .png images"):
        infer.image_files([tmp_path])


def test_models_name_shows_the_training_defaults_and_parameters():
    output = CliRunner().invoke(cli, ["models", "unet_deep"], env={"COLUMNS": "200"}).output
    assert "5,117,170 weights" in output
    lines = {line.split("│")[1].strip(): line for line in output.splitlines()
             if line.count("│") >= 4}
    assert "symmetric" in lines["lovasz"] and '"relu"' in lines["lovasz"]
    assert "--snapshots" in lines["snapshots"] and "3" in lines["snapshots"]
    assert "(model only)" in lines["input_size"]
    assert "has_salt_head" in output and json.dumps(True) in output
