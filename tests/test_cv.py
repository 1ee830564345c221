import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kagglesalt import cv, data
from kagglesalt.cli import cli
from kagglesalt.errors import KaggleSaltError
from kagglesalt.progress import Reporter
from kagglesalt.workspace import Workspace

EXAMPLES = str(Path(__file__).parent / "plugin_examples")


def options(name=None, **settings):
    return cv.CVOptions("tiny", 2, name, EXAMPLES, {"epochs": 2, "seed": 3, **settings})


class Recorder(Reporter):
    def __init__(self, stop_after_epochs=None):
        self.messages, self.epochs, self.stop = [], 0, stop_after_epochs

    def epoch_end(self, epoch, row):
        self.epochs += 1
        if self.stop and self.epochs >= self.stop:
            raise KeyboardInterrupt

    def message(self, text):
        self.messages.append(text)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, synthetic_master, trained_runs):
    ws = Workspace(synthetic_master, tmp_path_factory.mktemp("runs"), Path("unused"))
    return trained_runs(ws, "first", seed=1), ws


def test_a_run_folder_holds_everything_the_design_names(finished_run):
    run, ws = finished_run
    for name in ("config.json", "folds.csv", "oof.npy", "test.npy", "scores.json",
                 "fold_0/model_1.keras", "fold_0/history.csv", "fold_1/model_1.keras"):
        assert (run.path / name).exists(), name
    config = run.config
    assert config.model == "tiny" and config.settings["epochs"] == 2
    assert config.versions["backend"] and config.versions["keras"]
    train = data.load_train(ws.data_dir)
    assert config.data.fingerprint == train.fingerprint()
    assert run.oof().shape == (120, 101, 101) and run.oof().dtype == np.uint8
    assert run.test().shape == (30, 101, 101)
    history = pd.read_csv(run.path / "fold_0" / "history.csv")
    assert list(history["epoch"]) == [1, 2] and history["val_score"].between(0, 1).all()
    folds = run.folds()
    assert list(folds["id"]) == list(train.ids) and set(folds["fold"]) == {0, 1}


@pytest.mark.backend
def test_oof_score_equals_kagglesalt_score_of_the_same_predictions(finished_run, tmp_path):
    run, ws = finished_run
    scores = run.scores
    assert len(run.fold_scores()) == 2 and None not in run.fold_scores()
    exported = CliRunner().invoke(cli, ["--runs-dir", str(ws.runs_dir), "oof", run.name,
                                        "-o", str(tmp_path / "oof.csv")])
    assert exported.exit_code == 0, exported.output
    result = CliRunner().invoke(cli, ["--data-dir", str(ws.data_dir), "score",
                                      str(tmp_path / "oof.csv")])
    assert result.exit_code == 0, result.output
    assert f"{scores.score:.6f}" in result.output


def test_test_predictions_are_the_mean_of_the_folds(finished_run):
    run, _ = finished_run
    folds = [np.load(run.path / f"fold_{k}" / "test.npy").astype(float) for k in range(2)]
    assert np.abs(run.test() - np.mean(folds, axis=0)).max() <= 0.5


def test_an_interrupted_run_resumes_without_retraining_finished_folds(synthetic_data,
                                                                      tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KeyboardInterrupt):
        cv.run_cv(ws, options(), Recorder(stop_after_epochs=3))  # stops in fold 2
    run_dir = tmp_path / "runs" / "tiny-k2-s3"
    assert (run_dir / "fold_0" / "done.json").exists()
    assert not (run_dir / "fold_1" / "done.json").exists()
    assert not (run_dir / "scores.json").exists()
    first = (run_dir / "fold_0" / "model_1.keras").stat().st_mtime_ns
    recorder = Recorder()
    run = cv.run_cv(ws, options(), recorder)
    assert recorder.epochs == 2  # only fold 2 trained
    assert any("fold 1/2 already trained" in m for m in recorder.messages)
    assert (run_dir / "fold_0" / "model_1.keras").stat().st_mtime_ns == first
    assert run.finished


def test_a_rerun_with_other_settings_is_refused(finished_run):
    run, ws = finished_run
    with pytest.raises(KaggleSaltError, match=r"exists with different epochs \(2 there, 3 "
                                              r"here\): give a new name"):
        cv.run_cv(ws, options(epochs=3, name=run.name, seed=1))


def test_unknown_model_parameters_are_refused(synthetic_data, tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KaggleSaltError, match="has no parameter depth"):
        cv.run_cv(ws, options(params={"depth": 3}))


def test_cv_on_a_folder_without_data_names_it_and_the_ways_to_fill_it(tmp_path):
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "dta"), "--runs-dir",
                                      str(tmp_path / "runs"), "cv", "--model", "tiny",
                                      "--plugins-dir", EXAMPLES])
    assert result.exit_code == 1
    assert f"no competition data in {tmp_path / 'dta'}" in result.output
    for way in ("kagglesalt download", "kagglesalt synth", "kagglesalt demo"):
        assert way in result.output
    assert not (tmp_path / "dta").exists() and not (tmp_path / "runs").exists()


def test_cv_command_trains_and_prints_the_oof_score(synthetic_data, tmp_path):
    result = CliRunner().invoke(cli, [
        "--data-dir", str(synthetic_data), "--runs-dir", str(tmp_path / "runs"),
        "cv", "--model", "tiny", "--folds", "2", "--epochs", "1", "--plugins-dir", EXAMPLES,
        "--param", "width=3", "--augment", "brightness=0.1", "--loss", "bce+lovasz",
        "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "OOF score" in result.output
    # stage labels survive rich's markup; epochs and folds are numbered from 1
    assert "fold 1/2 epoch   1 [bce_dice]" in result.output
    assert "fold 2/2 epoch   2 [lovasz]" in result.output
    config = json.loads((tmp_path / "runs" / "tiny-k2-s42" / "config.json").read_text())
    assert config["settings"]["params"] == {"width": 3}
    assert config["settings"]["augment"] == {"brightness": 0.1}


def test_unknown_augmentations_and_unbuildable_parameters_are_one_line(synthetic_data,
                                                                        tmp_path):
    runner = CliRunner()
    common = ["--data-dir", str(synthetic_data), "--runs-dir", str(tmp_path / "runs"), "cv",
              "--model", "tiny", "--folds", "2", "--epochs", "1", "--plugins-dir", EXAMPLES]
    result = runner.invoke(cli, [*common, "--augment", "rotate=10"])
    assert result.exit_code == 1 and "no augmentation 'rotate'" in result.output
    result = runner.invoke(cli, [*common, "--param", "width=wide"])
    assert result.exit_code == 1 and "parameter width must be an integer" in result.output
    result = runner.invoke(cli, [*common, "--param", "width=0"])
    assert result.exit_code == 1 and "could not be built" in result.output
    assert "Traceback" not in result.output


def test_a_run_folder_without_a_finished_fold_never_blocks_a_corrected_rerun(synthetic_data,
                                                                             tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KeyboardInterrupt):
        cv.run_cv(ws, options(name="retry"), Recorder(stop_after_epochs=1))
    assert (tmp_path / "runs" / "retry" / "config.json").exists()
    run = cv.run_cv(ws, options(name="retry", epochs=1))  # other settings: starts over
    assert run.finished and run.config.settings["epochs"] == 1


def test_more_folds_than_images_is_refused_before_anything_is_written(synthetic_data,
                                                                      tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KaggleSaltError, match="120 training images cannot make 500 folds"):
        cv.run_cv(ws, cv.CVOptions("tiny", 500, None, EXAMPLES, {"epochs": 1}))
    assert not (tmp_path / "runs").exists()


def test_a_missing_depths_csv_is_said_once(synthetic_data, tmp_path):
    (synthetic_data / "depths.csv").unlink()
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    recorder = Recorder()
    cv.run_cv(ws, options(epochs=1), recorder)
    assert sum("No depths.csv" in m for m in recorder.messages) == 1


def budget_options(name, minutes=30.0):
    return cv.CVOptions("tiny", 2, name, EXAMPLES, {"seed": 3}, minutes=minutes,
                        most_epochs=3)


def test_a_run_to_a_time_budget_records_the_plan_the_rates_and_the_device(synthetic_data,
                                                                           tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    recorder = Recorder()
    run = cv.run_cv(ws, budget_options("timed"), recorder)
    config = run.config
    assert config.budget["minutes"] == 30.0
    assert config.budget["epochs"] == config.settings["epochs"] == 3  # the cap
    assert set(config.rates) == {"train", "predict", "compile"}
    assert config.rates["train"] and min(config.rates["train"].values()) > 0
    assert config.device.startswith("CPU ")
    assert config.device.endswith(f"on {config.versions['backend']}")
    assert recorder.messages[0] == f"Training tiny on {config.device}"
    assert any(m.startswith("Budget 30 minutes: 2 fold(s) of about 3 epochs")
               for m in recorder.messages)


def test_a_resumed_budget_run_keeps_its_plan(synthetic_data, tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KeyboardInterrupt):
        cv.run_cv(ws, budget_options("again"), Recorder(stop_after_epochs=4))  # in fold 2
    planned = json.loads((tmp_path / "runs" / "again" / "config.json").read_text())["budget"]
    recorder = Recorder()
    run = cv.run_cv(ws, budget_options("again"), recorder)
    assert not any(m.startswith("Timing") for m in recorder.messages)  # not measured again
    assert run.finished and run.config.budget == planned


def test_epochs_and_minutes_together_are_one_line_and_write_nothing(synthetic_data, tmp_path):
    result = CliRunner().invoke(cli, [
        "--data-dir", str(synthetic_data), "--runs-dir", str(tmp_path / "runs"), "cv",
        "--model", "tiny", "--plugins-dir", EXAMPLES, "--epochs", "3", "--minutes", "10"])
    assert result.exit_code == 2
    assert "--epochs and --minutes together: give one" in result.output
    assert not (tmp_path / "runs").exists()
    with pytest.raises(KaggleSaltError, match="not both"):
        cv.run_cv(Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs"),
                  cv.CVOptions("tiny", 2, None, EXAMPLES, {"epochs": 3}, minutes=10))


def test_a_run_that_would_take_hours_says_so_and_names_the_budget_option(synthetic_data,
                                                                         tmp_path):
    from kagglesalt.model import budget

    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    recorder = Recorder(stop_after_epochs=1)
    slow = budget.Rates({"bce": 0.01}, 1.0, 1.0)  # as a CPU is for a big model
    with pytest.raises(KeyboardInterrupt):
        cv.run_cv(ws, options(epochs=100), recorder, rates=slow)
    said = " ".join(recorder.messages)
    assert "days on this machine" in said and "(minutes=N)" in said
    assert any(getattr(m, "template", "") for m in recorder.messages)  # the CLI's --minutes N


def test_some_folds_can_be_trained_now_and_the_rest_later(synthetic_data, tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    first = cv.run_cv(ws, cv.CVOptions("tiny", 2, "parts", EXAMPLES, {"epochs": 1},
                                       folds_to_train=(0,)))
    assert first.fold_summary(0) is not None and first.fold_summary(1) is None
    assert not first.finished
    run = cv.run_cv(ws, cv.CVOptions("tiny", 2, "parts", EXAMPLES, {"epochs": 1},
                                     folds_to_train=(1,)))
    assert run.finished and None not in run.fold_scores()


def test_a_fold_whose_models_stayed_on_another_machine_finishes_the_run_by_its_predictions(
        synthetic_data, tmp_path):
    # As the GPU benchmark resumes on a fresh machine: the run folder came back without
    # its model files, and the next call trains only the folds still to do.
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    first = cv.run_cv(ws, cv.CVOptions("tiny", 2, "moved", EXAMPLES, {"epochs": 1},
                                       folds_to_train=(0,)))
    before = first.fold_summary(0)
    for model in first.fold_models(0):
        model.unlink()
    recorder = Recorder()
    run = cv.run_cv(ws, cv.CVOptions("tiny", 2, "moved", EXAMPLES, {"epochs": 1},
                                     folds_to_train=(1,)), recorder)
    assert run.finished and run.fold_summary(0) == before
    assert not run.fold_models(0) and (run.fold_dir(0) / "oof.npy").exists()
    assert "Resuming run moved: 1 of 2 folds already trained" in recorder.messages
    assert any("fold 1/2 is not whole" in m and "predictions are kept" in m
               for m in recorder.messages)
    # A rerun that may train every fold trains it again, so that its models exist.
    rerun = cv.run_cv(ws, cv.CVOptions("tiny", 2, "moved", EXAMPLES, {"epochs": 1}))
    assert len(rerun.fold_models(0)) == before.models


@pytest.mark.parametrize("name", ["../outside", "a/b", ".hidden", "", "x" * 201])
def test_a_name_that_would_leave_its_folder_is_refused_before_anything_is_written(
        synthetic_data, tmp_path, name):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KaggleSaltError, match="run name .*stays one folder"):
        cv.run_cv(ws, options(name=name))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "outside").exists()
    from kagglesalt import ensemble

    with pytest.raises(KaggleSaltError, match="submission name .*stays one folder"):
        ensemble.run_ensemble(ws, (), name=name)


def test_too_few_epochs_for_the_snapshots_is_said(synthetic_data, tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    recorder = Recorder()
    cv.run_cv(ws, options(epochs=3, loss="bce+lovasz", schedule="cosine", snapshots=3),
              recorder)
    assert "3 epochs leave the last stage 1: 1 snapshot(s) instead of 3" in recorder.messages


def test_the_ensemble_says_when_nothing_is_post_processed(finished_run):
    run, ws = finished_run
    result = CliRunner().invoke(cli, [
        "--data-dir", str(ws.data_dir), "--runs-dir", str(ws.runs_dir), "--submissions-dir",
        str(ws.runs_dir.parent / "subs-none"), "ensemble", run.name, "--postprocess", "none"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "no post-processing" in text and "under 0 px" not in text


def test_a_fold_cut_short_goes_on_from_its_checkpoint_when_the_run_resumes(synthetic_data,
                                                                           tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    settings = {"epochs": 4, "loss": "bce+lovasz", "lovasz_share": 0.25}  # 3 + 1 epochs
    with pytest.raises(KeyboardInterrupt):  # in fold 1's Lovász stage
        cv.run_cv(ws, options("cut", **settings), Recorder(stop_after_epochs=4))
    assert (tmp_path / "runs" / "cut" / "fold_0" / "checkpoint.npz").exists()
    recorder = Recorder()
    run = cv.run_cv(ws, options("cut", **settings), recorder)
    assert "fold 1/2: going on after epoch 3" in recorder.messages
    assert recorder.epochs == 1 + 4  # fold 1's last epoch, then fold 2
    assert run.finished and list(pd.read_csv(run.fold_dir(0) / "history.csv")["epoch"]) == \
        [1, 2, 3, 4]
    assert not (run.fold_dir(0) / "checkpoint.npz").exists()  # a whole fold needs none


def test_a_checkpoint_of_other_settings_is_not_used(synthetic_data, tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KeyboardInterrupt):
        cv.run_cv(ws, options("other", epochs=4, loss="bce+lovasz", lovasz_share=0.25),
                  Recorder(stop_after_epochs=4))
    recorder = Recorder()
    cv.run_cv(ws, options("other", epochs=2), recorder)  # no fold finished: starts over
    assert not any("going on" in m for m in recorder.messages)
    assert recorder.epochs == 4


def test_a_budget_run_cut_short_in_its_first_fold_goes_on_with_its_plan(synthetic_data,
                                                                       tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    opts = cv.CVOptions("tiny", 2, "cut-budget", EXAMPLES,
                        {"seed": 3, "loss": "bce+lovasz", "lovasz_share": 0.25},
                        minutes=30, most_epochs=4)
    with pytest.raises(KeyboardInterrupt):  # fold 1's Lovász stage, after its checkpoint
        cv.run_cv(ws, opts, Recorder(stop_after_epochs=4))
    recorder = Recorder()
    run = cv.run_cv(ws, opts, recorder)
    assert not any(m.startswith("Timing") for m in recorder.messages)  # the same plan
    assert "fold 1/2: going on after epoch 3" in recorder.messages
    assert run.finished


def _damage_truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _damage_garbled(path):
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 3: len(blob) // 3 + 4096] = bytes(4096)
    path.write_bytes(bytes(blob))


def _rewrite(path, change):
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _meta(arrays, **values):
    meta = json.loads(str(arrays["meta"]))
    meta.update(values)
    arrays["meta"] = np.array(json.dumps(meta))


DAMAGE = {
    "truncated": _damage_truncated,
    "garbled": _damage_garbled,
    "zero bytes": lambda path: path.write_bytes(b""),
    "no meta": lambda path: _rewrite(path, lambda a: a.pop("meta")),
    "a weight missing": lambda path: _rewrite(path, lambda a: a.pop("weights/0")),
    "a weight of another shape": lambda path: _rewrite(
        path, lambda a: a.update({"weights/0": np.zeros((2, 2), "float32")})),
    "an optimizer entry missing": lambda path: _rewrite(path, lambda a: a.pop("optimizer/1")),
    "a field of the wrong type": lambda path: _rewrite(path, lambda a: _meta(a, epoch="two")),
    "a stage out of the plan": lambda path: _rewrite(path, lambda a: _meta(a, stage=7)),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_is_set_aside_in_one_line_and_the_fold_starts_over(
        synthetic_data, tmp_path, damage):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    settings = {"epochs": 4, "loss": "bce+lovasz", "lovasz_share": 0.25}
    with pytest.raises(KeyboardInterrupt):  # in fold 1's Lovász stage
        cv.run_cv(ws, options("hurt", **settings), Recorder(stop_after_epochs=4))
    checkpoint = tmp_path / "runs" / "hurt" / "fold_0" / "checkpoint.npz"
    DAMAGE[damage](checkpoint)
    recorder = Recorder()
    run = cv.run_cv(ws, options("hurt", **settings), recorder)
    said = [m for m in recorder.messages if "checkpoint does not load" in m]
    assert len(said) == 1 and "\n" not in said[0], recorder.messages
    assert "checkpoint.damaged.npz" in said[0] and "starts over" in said[0]
    assert not any("going on" in m for m in recorder.messages)
    assert recorder.epochs == 4 + 4  # fold 1 from its start, then fold 2
    assert run.finished and (run.fold_dir(0) / "checkpoint.damaged.npz").exists()
    assert list(pd.read_csv(run.fold_dir(0) / "history.csv")["epoch"]) == [1, 2, 3, 4]


def test_a_finished_fold_keeps_no_stale_checkpoint(synthetic_data, tmp_path):
    """A kill between a fold's done.json and the checkpoint's removal leaves both."""
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KeyboardInterrupt):  # in fold 2, fold 1 whole
        cv.run_cv(ws, options("stale", epochs=2), Recorder(stop_after_epochs=3))
    fold = tmp_path / "runs" / "stale" / "fold_0"
    (fold / "checkpoint.npz").write_bytes(b"left by a kill")
    run = cv.run_cv(ws, options("stale", epochs=2), Recorder())
    assert run.finished and not (fold / "checkpoint.npz").exists()


def test_the_run_is_locked_before_the_data_is_read_so_rm_cannot_pull_it_away(synthetic_data,
                                                                            tmp_path,
                                                                            monkeypatch):
    from kagglesalt.workspace import runs

    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    cv.run_cv(ws, options("held", epochs=1))
    real_load = data.load_train
    refused = []

    def load_while_someone_removes(*args, **kwargs):
        with pytest.raises(KaggleSaltError, match="run held is being written by process"):
            runs.remove(ws.runs_dir, "held", ws.submissions_dir, force=True)
        refused.append(True)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(data, "load_train", load_while_someone_removes)
    run = cv.run_cv(ws, options("held", epochs=1))
    assert refused and run.finished and sorted(p.name for p in ws.runs_dir.iterdir()) == ["held"]


def test_refused_data_leaves_no_empty_run_folder(synthetic_data, tmp_path):
    (synthetic_data / "train.csv").write_text("")
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KaggleSaltError, match="train.csv is empty"):
        cv.run_cv(ws, options("nothing", epochs=1))
    assert not (tmp_path / "runs" / "nothing").exists()


def test_a_missing_sample_submission_is_refused_before_training(synthetic_data, tmp_path):
    (synthetic_data / "sample_submission.csv").unlink()
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    recorder = Recorder()
    with pytest.raises(KaggleSaltError, match="sample_submission.csv is missing"):
        cv.run_cv(ws, options("early", epochs=1), recorder)
    assert recorder.epochs == 0 and not (tmp_path / "runs").exists()


def test_a_budget_too_small_for_the_smallest_plan_is_refused_before_training(synthetic_data,
                                                                             tmp_path):
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    recorder = Recorder()
    with pytest.raises(KaggleSaltError, match=r"a budget of 0.001 minutes cannot hold even "
                                              r"the smallest plan of tiny here \(1 epoch"):
        cv.run_cv(ws, budget_options("small", minutes=0.001), recorder)
    assert recorder.epochs == 0 and not (tmp_path / "runs" / "small").exists()


def test_a_budget_that_buys_too_few_epochs_to_learn_says_so_and_what_would_help(
        synthetic_data, tmp_path):
    plugin = tmp_path / "plugins" / "slow_learner.py"
    plugin.parent.mkdir()
    plugin.write_text((Path(EXAMPLES) / "tiny_model.py").read_text().replace(
        'register("tiny", build, description="two-level U-Net for tests",',
        'register("tiny", build, description="two-level U-Net for tests", learns_in=30,'))
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    recorder = Recorder()
    cv.run_cv(ws, cv.CVOptions("tiny", 3, "short", str(plugin.parent), {"seed": 3},
                               minutes=30.0, most_epochs=3), recorder)
    said = [m for m in recorder.messages if m.startswith("Too few epochs to learn")]
    assert said == ["Too few epochs to learn: tiny needs about 30 before it finds salt at all "
                    "(with fewer it scored below a submission of empty masks), and this "
                    "budget buys 3 here; give about minutes=300, or folds=2"]


def test_a_run_below_empty_masks_says_so_on_the_command_line(synthetic_data, tmp_path,
                                                             monkeypatch):
    from kagglesalt.competition import metric

    args = ["--data-dir", str(synthetic_data), "--runs-dir", str(tmp_path / "runs"),
            "--submissions-dir", str(tmp_path / "subs")]
    monkeypatch.setattr(metric, "empty_score", lambda truth: 0.999)  # no model beats it
    result = CliRunner().invoke(cli, [*args, "cv", "--model", "tiny", "--plugins-dir",
                                      EXAMPLES, "--epochs", "2", "--validate-every", "2",
                                      "--schedule", "cosine", "--snapshots", "1",
                                      "--name", "weak"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "is not above the 0.9990 that empty masks score on these images" in text
    assert "nan" not in result.output  # epoch 1 is not validated: nothing said of it
    made = CliRunner().invoke(cli, [*args, "ensemble", "weak"])
    assert made.exit_code == 0 and "that empty masks score" in " ".join(made.output.split())
    assert json.loads((tmp_path / "runs" / "weak" / "scores.json").read_text())["oof"][
        "empty_score"] == 0.999
