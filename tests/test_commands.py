"""The commands a competitor reaches for on finished runs: runs, predict, models NAME."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kagglesalt import cv, data, predict
from kagglesalt.cli import cli
from kagglesalt.competition import metric
from kagglesalt.errors import KaggleSaltError
from kagglesalt.workspace import Workspace, runs

EXAMPLES = str(Path(__file__).parent / "plugin_examples")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, synthetic_master, trained_runs):
    root = tmp_path_factory.mktemp("commands")
    ws = Workspace(synthetic_master, root / "runs", root / "submissions")
    trained_runs(ws, "first", seed=1)
    trained_runs(ws, "second", seed=1, epochs=1, lovasz="symmetric")
    return ws


class Said(cv.Reporter):
    """Keeps what cv says."""

    def __init__(self):
        self.messages = []

    def message(self, text):
        self.messages.append(text)


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
    assert "1/2" in lines[0] and "2×2" in lines[1]
    first = runs.open_run(two_runs.runs_dir, "first")
    assert f"{first.oof_score:.4f}" in lines[1] and "done" in lines[1]


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
        assert ((png > 0) == mask).all()  # the run's own test masks, to the pixel
    table = pd.read_csv(tmp_path / "masks.csv", dtype=str, keep_default_na=False)
    assert list(table["id"]) == sorted(test.ids[:6])


def test_predict_refuses_what_is_not_there(two_runs, tmp_path):
    result = CliRunner().invoke(cli, ["--runs-dir", str(two_runs.runs_dir), "predict",
                                      "first", str(tmp_path / "nothing.png"), "--csv", "x.csv"])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = CliRunner().invoke(cli, ["--runs-dir", str(two_runs.runs_dir), "predict",
                                      "first", str(tmp_path)])
    assert result.exit_code == 2 and "--png FOLDER and/or --csv FILE" in result.output
    with pytest.raises(KaggleSaltError, match="holds no .png images"):
        predict.image_files([tmp_path])


def test_models_name_shows_the_training_defaults_and_parameters():
    output = CliRunner().invoke(cli, ["models", "unet_deep"], env={"COLUMNS": "200"}).output
    assert "5,117,170 weights" in output
    lines = {line.split("│")[1].strip(): line for line in output.splitlines()
             if line.count("│") >= 4}
    assert "symmetric" in lines["lovasz"] and '"relu"' in lines["lovasz"]
    assert "--snapshots" in lines["snapshots"] and "2" in lines["snapshots"]
    assert "(model only)" in lines["input_size"]
    assert "has_salt_head" in output and json.dumps(True) in output


def copy_of(ws, tmp_path) -> Workspace:
    import shutil

    shutil.copytree(ws.runs_dir, tmp_path / "runs")
    return Workspace(ws.data_dir, tmp_path / "runs", tmp_path / "submissions")


def outcome(ws, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(ws.data_dir), "--runs-dir",
                                    str(ws.runs_dir), "--submissions-dir",
                                    str(ws.submissions_dir), *args], env={"COLUMNS": "200"})


def test_runs_with_one_name_says_how_it_is_used(two_runs):
    result = outcome(two_runs, "runs", "first")
    assert result.exit_code == 2
    assert "give no run to list them all, or two or more to compare" in result.output


def test_an_unfinished_run_is_refused_by_ensemble_predict_and_report(two_runs, tmp_path):
    ws = copy_of(two_runs, tmp_path)
    (ws.runs_dir / "first" / "scores.json").unlink()
    image = str(next((Path(ws.data_dir) / "test" / "images").glob("*.png")))
    for args in (["ensemble", "first"], ["predict", "first", image, "--csv", "x.csv"],
                 ["report", "first"], ["oof", "first"]):
        result = outcome(ws, *args)
        assert result.exit_code == 1, args
        assert "run first is not finished" in result.output \
            or "has no scores.json" in result.output, args
        assert "Traceback" not in result.output


def test_a_run_without_models_is_refused_by_predict(two_runs, tmp_path):
    ws = copy_of(two_runs, tmp_path)
    for model in (ws.runs_dir / "first").glob("fold_*/model_*.keras"):
        model.unlink()
    image = str(next((Path(ws.data_dir) / "test" / "images").glob("*.png")))
    result = outcome(ws, "predict", "first", image, "--csv", str(tmp_path / "x.csv"),
                     "--plugins-dir", EXAMPLES)
    assert result.exit_code == 1 and "has no saved models" in result.output


def test_runs_of_other_data_are_refused_by_ensemble_and_report(two_runs, tmp_path):
    ws = copy_of(two_runs, tmp_path)
    path = ws.runs_dir / "second" / "config.json"
    config = json.loads(path.read_text())
    config["data"]["fingerprint"] = "0" * 16
    path.write_text(json.dumps(config))
    result = outcome(ws, "ensemble", "first", "second")
    assert result.exit_code == 1 and "trained on different data" in result.output
    for args in (["ensemble", "second"], ["report", "second"]):
        result = outcome(ws, *args)
        assert result.exit_code == 1, args
        assert "are not those run second used" in result.output, args


def test_report_with_nothing_to_report_is_one_line(tmp_path, synthetic_data):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "submissions")
    result = outcome(ws, "report")
    assert result.exit_code == 1 and "nothing to report" in result.output


def test_ctrl_c_exits_with_130_and_says_finished_work_is_kept(two_runs, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cv, "run_cv", interrupted)
    result = outcome(two_runs, "cv", "--model", "tiny", "--plugins-dir", EXAMPLES)
    assert result.exit_code == 130
    assert "Interrupted: finished work is kept; rerun the command to resume." in result.output


def test_a_run_resumed_on_changed_data_is_refused(synthetic_data, tmp_path):
    from kagglesalt.data import synth

    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "submissions")
    options = cv.CVOptions("tiny", 2, "changing", EXAMPLES, {"epochs": 1, "seed": 1})

    class StopAfterFirstFold(cv.Reporter):
        def fold_start(self, fold, folds, epochs, steps):
            if fold == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cv.run_cv(ws, options, StopAfterFirstFold())
    synth.generate(synthetic_data, n_train=120, n_test=30, seed=99, force=True)
    with pytest.raises(KaggleSaltError, match="exists with different data"):
        cv.run_cv(ws, options)


def test_a_fold_missing_a_model_file_is_refused_by_predict_and_retrained_by_cv(two_runs,
                                                                                tmp_path):
    ws = copy_of(two_runs, tmp_path)
    next((ws.runs_dir / "first").glob("fold_1/model_*.keras")).unlink()
    image = str(next((Path(ws.data_dir) / "test" / "images").glob("*.png")))
    result = outcome(ws, "predict", "first", image, "--csv", str(tmp_path / "x.csv"),
                     "--plugins-dir", EXAMPLES)
    assert result.exit_code == 1
    assert "fold_1 holds 0 of its 1 model files" in result.output
    said = Said()
    messages = said.messages
    run = cv.run_cv(ws, cv.CVOptions("tiny", 2, "first", EXAMPLES, {"seed": 1, "epochs": 2}),
                    said)
    assert any("fold 2/2 is not whole" in m and "training it again" in m for m in messages)
    assert run.fold_problem(1) is None and len(run.fold_models(1)) == 1


@pytest.mark.parametrize("damaged", ["oof.npy", "fold_0/oof.npy", "fold_0/done.json",
                                     "fold_0/model_1.keras"])
def test_a_damaged_run_file_is_one_line_naming_it(two_runs, tmp_path, damaged):
    ws = copy_of(two_runs, tmp_path)
    path = ws.runs_dir / "first" / damaged
    path.write_bytes(path.read_bytes()[:40])  # cut short, as by a full disk
    image = str(next((Path(ws.data_dir) / "test" / "images").glob("*.png")))
    command = ["ensemble", "first"] if damaged == "oof.npy" else \
        ["predict", "first", image, "--csv", str(tmp_path / "x.csv"), "--plugins-dir", EXAMPLES]
    result = outcome(ws, *command)
    assert result.exit_code == 1, result.output
    assert damaged.split("/")[-1] in result.output and "damaged" in result.output
    assert "Traceback" not in result.output


def test_runs_never_cut_a_name_in_an_80_column_terminal(two_runs, tmp_path):
    import shutil

    ws = copy_of(two_runs, tmp_path)
    typical, long = "unet_lite-k3-m45-lovasz", "unet_lite-k5-s42-lovasz-symmetric-aug-v2"
    shutil.copytree(ws.runs_dir / "first", ws.runs_dir / typical)
    result = CliRunner().invoke(cli, ["--runs-dir", str(ws.runs_dir), "runs"],
                                env={"COLUMNS": "80"})
    line = next(line for line in result.output.splitlines() if typical in line)
    assert len(line) <= 80 and "2×2" in line and "…" not in line  # everything fits
    shutil.copytree(ws.runs_dir / "first", ws.runs_dir / long)
    result = CliRunner().invoke(cli, ["--runs-dir", str(ws.runs_dir), "runs"],
                                env={"COLUMNS": "80"})
    assert any(long in line and len(line) <= 80 for line in result.output.splitlines())


def test_runs_rm_and_mv_manage_runs_and_protect_those_a_submission_came_from(two_runs,
                                                                              tmp_path):
    ws = copy_of(two_runs, tmp_path)
    assert outcome(ws, "runs", "mv", "second", "renamed").exit_code == 0
    renamed = runs.open_run(ws.runs_dir, "renamed")
    assert renamed.config.name == "renamed" and renamed.finished
    assert not (ws.runs_dir / "second").exists()
    assert outcome(ws, "ensemble", "first", "--name", "made").exit_code == 0
    for args in (["runs", "rm", "first"], ["runs", "mv", "first", "other"]):
        result = outcome(ws, *args)
        assert result.exit_code == 1 and "run first made made.csv" in result.output, args
        assert "--force" in result.output
    assert outcome(ws, "runs", "mv", "renamed", "first").exit_code == 1  # exists
    assert outcome(ws, "runs", "mv", "renamed", "../away").exit_code == 1
    assert outcome(ws, "runs", "rm", "renamed").exit_code == 0
    assert outcome(ws, "runs", "rm", "first", "--force").exit_code == 0
    assert sorted(p.name for p in ws.runs_dir.iterdir()) == []
    assert outcome(ws, "runs", "rm", "first").exit_code == 1  # no such run


def test_predict_with_an_ensemble_reproduces_its_submission_exactly(two_runs, tmp_path):
    ws = copy_of(two_runs, tmp_path)
    assert outcome(ws, "ensemble", "first", "second", "--name", "both").exit_code == 0
    result = outcome(ws, "predict", "both", str(Path(ws.data_dir) / "test" / "images"),
                     "--csv", str(tmp_path / "again.csv"), "--plugins-dir", EXAMPLES)
    assert result.exit_code == 0, result.output
    made = pd.read_csv(ws.submissions_dir / "both.csv", dtype=str, keep_default_na=False)
    again = pd.read_csv(tmp_path / "again.csv", dtype=str, keep_default_na=False)
    assert dict(zip(again["id"], again["rle_mask"], strict=True)) == \
        dict(zip(made["id"], made["rle_mask"], strict=True))


def complete(ws, words):
    result = CliRunner().invoke(cli, [], prog_name="kagglesalt", env={
        "_KAGGLESALT_COMPLETE": "bash_complete", "COMP_WORDS": " ".join(words),
        "COMP_CWORD": str(len(words) - 1), "KAGGLESALT_RUNS_DIR": str(ws.runs_dir),
        "KAGGLESALT_SUBMISSIONS_DIR": str(ws.submissions_dir)})
    return [line.split(",", 1)[1] for line in result.output.splitlines()]


def test_the_shell_completes_run_ensemble_and_model_names(two_runs, tmp_path):
    ws = copy_of(two_runs, tmp_path)
    assert outcome(ws, "ensemble", "first", "--name", "fine").exit_code == 0
    assert complete(ws, ["kagglesalt", "predict", ""]) == ["first", "second", "fine"]
    assert complete(ws, ["kagglesalt", "report", "f"]) == ["first", "fine"]
    assert complete(ws, ["kagglesalt", "runs", "rm", "s"]) == ["second"]
    assert complete(ws, ["kagglesalt", "oof", ""]) == ["first", "second"]
    assert complete(ws, ["kagglesalt", "cv", "--from", "f"]) == ["first"]
    assert "unet_lite" in complete(ws, ["kagglesalt", "cv", "--model", "unet"])


@pytest.mark.parametrize("args", [["runs", "rm", "../../outside"], ["runs", "rm", "../outside"],
                                  ["runs", "mv", "../../outside", "moved"],
                                  ["report", "../../outside"], ["oof", "../../outside"],
                                  ["runs", "../../outside", "first"]])
def test_no_command_reaches_a_folder_outside_the_runs_folder_by_its_name(two_runs, tmp_path,
                                                                       args):
    ws = copy_of(two_runs, tmp_path / "deep" / "deeper")
    outside = Path(ws.runs_dir).parent.parent / "outside"
    shutil.copytree(ws.runs_dir / "first", outside)
    (outside / "mine.txt").write_text("a file of the user's own")
    result = outcome(ws, *args)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "'../" in result.output and "name" in result.output
    assert (outside / "mine.txt").exists() and (outside / "config.json").exists()
    assert not (ws.runs_dir / "moved").exists()


def test_a_name_that_is_both_a_run_and_an_ensemble_says_which_it_uses(two_runs, tmp_path):
    ws = copy_of(two_runs, tmp_path)
    assert outcome(ws, "ensemble", "second", "--name", "first").exit_code == 0
    ensemble = outcome(ws, "report", "first")
    assert ensemble.exit_code == 0, ensemble.output
    assert "first is both a run and an ensemble: using the ensemble" in ensemble.output
    assert "runs/first" in ensemble.output
    assert ensemble.output.strip().endswith("first.html")
    run = outcome(ws, "report", "runs/first")
    assert run.exit_code == 0 and "both a run" not in run.output
    assert run.output.strip().endswith(str(Path("first") / "report.html"))
    assert "ensemble" not in outcome(ws, "report", "second").output  # only a run
    missing = outcome(ws, "report", "submissions/second")
    assert missing.exit_code == 1 and "no ensemble submission 'second'" in missing.output


def _cut(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


RUN_RECORD_DAMAGE = {
    "test_ids.csv cut short": ("test_ids.csv", _cut),
    "test_ids.csv binary": ("test_ids.csv", lambda p: p.write_bytes(bytes(range(256)) * 4)),
    "folds.csv cut short": ("folds.csv", _cut),
    "test.npy missing": ("test.npy", lambda p: p.unlink()),
    "oof.npy missing": ("oof.npy", lambda p: p.unlink()),
    "scores.json of the wrong type": ("scores.json", lambda p: p.write_text(json.dumps(
        {**json.loads(p.read_text()), "oof": {"score": "high", "threshold": 0.5}}))),
}


@pytest.mark.parametrize("damage", RUN_RECORD_DAMAGE)
def test_a_damaged_run_record_is_one_line_and_cv_rebuilds_it_keeping_every_fold(
        two_runs, tmp_path, damage):
    ws = copy_of(two_runs, tmp_path)
    name, hurt = RUN_RECORD_DAMAGE[damage]
    hurt(ws.runs_dir / "first" / name)
    for args in (["ensemble", "first"], ["report", "first"], ["oof", "first"], ["runs"]):
        result = outcome(ws, *args)
        assert "Traceback" not in result.output and result.exception in (None, SystemExit) \
            or isinstance(result.exception, SystemExit), (args, result.output)
        if args != ["runs"] and result.exit_code:
            assert name in result.output and ("damaged" in result.output
                                              or "missing" in result.output), result.output
    models = sorted(p.stat().st_mtime_ns for p in (ws.runs_dir / "first").glob("fold_*/*"))
    said = Said()
    messages = said.messages
    run = cv.run_cv(ws, cv.CVOptions("tiny", 2, "first", EXAMPLES, {"seed": 1, "epochs": 2}),
                    said)
    assert messages.count("fold 1/2 already trained: score "
                          f"{run.fold_summary(0).score:.4f}") == 1, messages
    assert not any("again" in m for m in messages), messages
    assert sorted(p.stat().st_mtime_ns for p in run.path.glob("fold_*/*")) == models
    assert run.finished and outcome(ws, "ensemble", "first").exit_code == 0


@pytest.mark.parametrize("field, value", [("created", 5), ("folds", "two"),
                                          ("settings", ["x"]), ("data", 3)])
def test_one_run_with_a_wrong_typed_config_value_is_listed_as_damaged_among_the_others(
        two_runs, tmp_path, field, value):
    ws = copy_of(two_runs, tmp_path)
    path = ws.runs_dir / "first" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
    result = outcome(ws, "runs")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    first = next(line for line in result.output.splitlines() if line.lstrip().startswith("first"))
    second = next(line for line in result.output.splitlines()
                  if line.lstrip().startswith("second"))
    assert "damaged" in first and "done" in second
    assert "config.json is damaged" in result.output


def test_a_run_resumes_after_its_data_folder_moved(two_runs, tmp_path):
    """The run's data is its content, not its place."""
    moved = Path(shutil.copytree(two_runs.data_dir, tmp_path / "elsewhere" / "data"))
    ws = Workspace(moved, tmp_path / "runs", tmp_path / "submissions")
    shutil.copytree(two_runs.runs_dir / "first", ws.runs_dir / "first")
    shutil.rmtree(ws.runs_dir / "first" / "fold_1")  # cut short in its second fold
    (ws.runs_dir / "first" / "scores.json").unlink()
    said = Said()
    messages = said.messages
    run = cv.run_cv(ws, cv.CVOptions("tiny", 2, "first", EXAMPLES, {"seed": 1, "epochs": 2}),
                    said)
    assert any(m.startswith("fold 1/2 already trained") for m in messages), messages
    assert run.finished and run.config.data.dir == str(moved.resolve())


def test_runs_rm_clears_a_deleted_folder_a_kill_left_behind(two_runs, tmp_path):
    ws = copy_of(two_runs, tmp_path)
    left = ws.runs_dir / ".gone.deleted"
    shutil.copytree(ws.runs_dir / "second", left)  # a runs rm killed mid-delete
    assert outcome(ws, "runs", "rm", "first").exit_code == 0
    assert sorted(p.name for p in ws.runs_dir.iterdir()) == ["second"]


def test_report_clears_an_old_temporary_of_its_page(two_runs, tmp_path):
    import os
    import time

    ws = copy_of(two_runs, tmp_path)
    stale = ws.runs_dir / "first" / ".report.html.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = ws.runs_dir / "first" / ".report.html.def456.tmp"  # a live writer's, maybe
    fresh.write_bytes(b"y")
    assert outcome(ws, "report", "first").exit_code == 0
    assert not stale.exists() and fresh.exists()


def test_a_damaged_fold_history_leaves_the_rest_of_the_report(two_runs, tmp_path):
    ws = copy_of(two_runs, tmp_path)
    history = ws.runs_dir / "first" / "fold_1" / "history.csv"
    history.write_bytes(bytes(range(256)) * 8)
    result = outcome(ws, "report", "first")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    page = (ws.runs_dir / "first" / "report.html").read_text()
    assert "history.csv is damaged" in page and "learning curves cannot be drawn" in page
    assert "OOF competition score" in page


def test_runs_lists_the_epochs_the_folds_ran_not_the_first_plan(two_runs, tmp_path):
    """A budget re-plans each fold's epochs as it goes (the demo's planned 17 and ran 40)."""
    ws = copy_of(two_runs, tmp_path)
    done = ws.runs_dir / "first" / "fold_1" / "done.json"
    summary = json.loads(done.read_text())
    done.write_text(json.dumps({**summary, "epochs_run": 5}))
    line = next(line for line in outcome(ws, "runs").output.splitlines()
                if line.lstrip().startswith("first"))
    assert "2×2-5" in line
