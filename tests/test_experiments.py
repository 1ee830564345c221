"""Experiment files and variations of a run: `cv --config FILE`, `cv --from RUN --set`."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kagglesalt.cli import cli
from kagglesalt.errors import KaggleSaltError
from kagglesalt.model import experiments, settings

EXAMPLES = str(Path(__file__).parent / "plugin_examples")


def test_an_experiment_file_holds_the_run_keys_and_any_setting(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('model = "unet_lite"\nfolds = 3\nminutes = 45\nloss = "bce+lovasz"\n'
                    'lovasz_share = 0.4\n\n[augment]\ncrop_scale = 0.1\n\n[params]\n'
                    'start_filters = 12\n')
    values = experiments.read(path)
    assert values == {"model": "unet_lite", "folds": 3, "minutes": 45, "loss": "bce+lovasz",
                      "lovasz_share": 0.4, "augment": {"crop_scale": 0.1},
                      "params": {"start_filters": 12}}
    assert experiments.read(_written(tmp_path, experiments.to_toml(values))) == values


def _written(tmp_path, text):
    path = tmp_path / "again.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("lossy = 1\n", "exp.toml: no setting 'lossy'"),
    ('loss = "hinge"\n', "exp.toml: loss must be one of bce, bce_dice"),
    ("folds = 1\n", "exp.toml: folds must be an integer of at least 2"),
    ("epochs = 2.5\n", "exp.toml: epochs must be an integer"),
    ("[augment]\nrotate = 3\n", "exp.toml: no augmentation 'rotate'"),
    ("model = \n", "exp.toml is not valid TOML"),
])
def test_a_wrong_key_or_value_is_one_line_naming_it(tmp_path, text, message):
    (tmp_path / "exp.toml").write_text(text)
    with pytest.raises(KaggleSaltError, match=message):
        experiments.read(tmp_path / "exp.toml")


def test_sets_reach_into_the_tables_and_are_checked():
    values = experiments.with_sets({"params": {"width": 3}, "epochs": 5},
                                   {"params.width": 4, "augment.brightness": 0.1,
                                    "epochs": 7})
    assert values == {"params": {"width": 4}, "augment": {"brightness": 0.1}, "epochs": 7}
    with pytest.raises(KaggleSaltError, match="^sets: batch_size must be at least 1"):
        experiments.with_sets({}, {"batch_size": 0})


def test_every_declared_setting_can_be_written_in_a_file():
    every = settings.as_config(settings.TrainSettings(augment={"brightness": 0.1}))
    assert experiments.check(every, "all") == every


def invoke(data, runs, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(data), "--runs-dir", str(runs), "cv",
                                    "--plugins-dir", EXAMPLES, *args])


def test_cv_runs_an_experiment_file_and_the_command_line_overrides_it(synthetic_data,
                                                                     tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('model = "tiny"\nfolds = 2\nname = "from-file"\nepochs = 2\n'
                    'loss = "bce+lovasz"\n[params]\nwidth = 3\n')
    result = invoke(synthetic_data, tmp_path / "runs", "--config", str(path), "--epochs", "1",
                    "--param", "width=2")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "runs" / "from-file" / "config.json").read_text())
    assert config["model"] == "tiny" and config["folds"] == 2
    assert config["settings"]["epochs"] == 1 and config["settings"]["loss"] == "bce+lovasz"
    assert config["settings"]["params"] == {"width": 2}


def test_cv_from_a_run_varies_it_into_a_new_run(synthetic_data, tmp_path):
    assert invoke(synthetic_data, tmp_path / "runs", "--model", "tiny", "--folds", "2",
                  "--epochs", "1", "--name", "base", "--param", "width=3").exit_code == 0
    result = invoke(synthetic_data, tmp_path / "runs", "--from", "base", "--set",
                    "params.width=2", "--set", "learning_rate=0.01", "--name", "varied")
    assert result.exit_code == 0, result.output
    base = json.loads((tmp_path / "runs" / "base" / "config.json").read_text())
    varied = json.loads((tmp_path / "runs" / "varied" / "config.json").read_text())
    assert varied["model"] == "tiny" and varied["folds"] == 2
    assert varied["settings"]["params"] == {"width": 2}
    assert varied["settings"]["learning_rate"] == 0.01
    changed = {k for k in base["settings"] if base["settings"][k] != varied["settings"][k]}
    assert changed == {"params", "learning_rate"}


def test_an_unknown_set_key_is_one_line(synthetic_data, tmp_path):
    result = invoke(synthetic_data, tmp_path / "runs", "--model", "tiny", "--set", "lr=1")
    assert result.exit_code == 1 and "--set: no setting 'lr'" in result.output
    assert not (tmp_path / "runs").exists()


def test_the_command_line_wins_over_the_experiment_and_a_budget_gives_way_to_epochs():
    base = {"model": "unet_lite", "minutes": 45, "params": {"width": 3}}
    merged = experiments.merge(base, {"params.depth": 3}, {"epochs": 10,
                                                            "params": {"width": 2}})
    assert merged == {"model": "unet_lite", "epochs": 10, "params": {"width": 2, "depth": 3}}
    assert "epochs" not in experiments.merge({"epochs": 30}, {}, {"minutes": 5})
    with pytest.raises(KaggleSaltError, match="both epochs and minutes"):
        experiments.merge({"epochs": 30}, {"minutes": 5}, {})
