"""Training settings: declared once, then checked, offered as cv options and recorded."""

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kagglesalt import plugins
from kagglesalt.cli import cli
from kagglesalt.errors import KaggleSaltError
from kagglesalt.model import settings

EXAMPLES = str(Path(__file__).parent / "plugin_examples")


def test_every_declared_setting_is_a_cv_option_with_its_help():
    result = CliRunner().invoke(cli, ["cv", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    help_text = " ".join(result.output.split())
    for f in dataclasses.fields(settings.TrainSettings):
        flag = settings.flag(f)
        if flag is None:
            continue
        assert flag in help_text, flag
        assert " ".join(f.metadata["help"].split())[1:30] in help_text, f.name
        for choice in f.metadata["choices"]:
            assert choice in help_text


@pytest.mark.parametrize("name, value, message", [
    ("loss", "focal", "loss must be one of bce, bce_dice, lovasz, bce+lovasz"),
    ("epochs", 0, "epochs must be at least 1"),
    ("batch_size", 2.5, "batch_size must be an integer"),
    ("learning_rate", 0, "learning_rate must be above 0"),
    ("lovasz_share", 1.0, "lovasz_share must be at most 0.95"),
    ("augment", {"rotate": 0.1}, "no augmentation 'rotate'"),
    ("augment", {"crop_scale": 2}, "augmentation crop_scale must be a number from 0 to 1"),
    ("logits", "yes", "logits must be true or false"),
    ("optimizer", "sgd", "no setting 'optimizer'"),
])
def test_a_value_that_is_not_allowed_is_named_with_what_is(name, value, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        settings.check(name, value)


def test_the_user_overrides_the_model_which_overrides_the_declaration():
    chosen = settings.resolve({"epochs": 60, "augment": {"brightness": 0.1}},
                              {"epochs": 5, "batch_size": None, "augment": {"contrast": 0.2},
                               "params": {"width": 3}}, {"width": 4, "depth": 2})
    assert chosen.epochs == 5 and chosen.batch_size == settings.default("batch_size")
    assert chosen.augment == {"brightness": 0.1, "contrast": 0.2}
    assert chosen.params == {"width": 3, "depth": 2}
    with pytest.raises(KaggleSaltError, match="snapshots need the cosine schedule"):
        settings.resolve({}, {"snapshots": 2, "schedule": "plateau"})


def test_a_plugin_default_that_is_not_allowed_refuses_the_plugin_at_registration(tmp_path):
    (tmp_path / "focal.py").write_text(textwrap.dedent("""
        from kagglesalt.hookspecs import hookimpl

        @hookimpl
        def register_models(register):
            register("focal_unet", lambda input_size=128: None, loss="focal")
    """))
    result = CliRunner().invoke(cli, ["models", "--plugins-dir", str(tmp_path)])
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if "focal" in line]
    assert len(lines) == 1 and "focal.py" in lines[0]
    assert "model focal_unet: default loss must be one of" in lines[0]
    (tmp_path / "clash.py").write_text(textwrap.dedent("""
        from kagglesalt.hookspecs import hookimpl

        @hookimpl
        def register_models(register):
            register("clash", lambda input_size=128: None, snapshots=3, schedule="plateau")
    """))
    plugins.reset()
    assert "clash" not in plugins.models(tmp_path)
    assert "snapshots need the cosine schedule" in plugins.broken()[f"{tmp_path.name}/clash.py"]
    result = CliRunner().invoke(cli, ["cv", "--model", "focal_unet", "--plugins-dir",
                                      str(tmp_path)])
    assert result.exit_code == 1 and "no model named 'focal_unet'" in result.output
    assert "broken" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "0 is not in the range x>=1"),
    (["--epochs", "-3"], "is not in the range x>=1"),
    (["--batch-size", "0"], "is not in the range x>=1"),
    (["--lr", "0"], "is not in the range x>0"),
    (["--folds", "1"], "is not in the range x>=2"),
    (["--loss", "focal"], "'focal' is not one of"),
])
def test_bad_cv_options_are_refused_before_anything_is_written(synthetic_data, tmp_path, args,
                                                               message):
    result = CliRunner().invoke(cli, ["--data-dir", str(synthetic_data), "--runs-dir",
                                      str(tmp_path / "runs"), "cv", "--model", "tiny",
                                      "--plugins-dir", EXAMPLES, *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "runs").exists()


def test_settings_the_cv_command_takes_are_recorded_in_config_json(synthetic_data, tmp_path):
    result = CliRunner().invoke(cli, [
        "--data-dir", str(synthetic_data), "--runs-dir", str(tmp_path / "runs"), "cv",
        "--model", "tiny", "--folds", "2", "--epochs", "2", "--plugins-dir", EXAMPLES,
        "--loss", "bce+lovasz", "--lovasz", "symmetric", "--lovasz-share", "0.5",
        "--schedule", "cosine", "--snapshots", "1", "--name", "recorded"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "runs" / "recorded" / "config.json").read_text())
    assert config["settings"] == settings.as_config(settings.TrainSettings(
        input_size=32, loss="bce+lovasz", lovasz="symmetric", lovasz_share=0.5, epochs=2,
        batch_size=16, learning_rate=3e-3, schedule="cosine", snapshots=1,
        params={"width": 4}))


def test_key_value_texts_read_numbers_and_json_and_keep_plain_text():
    assert settings.key_values(["width=3", "lovasz=relu", 'params={"depth": 2}', "on=true"]) \
        == {"width": 3, "lovasz": "relu", "params": {"depth": 2}, "on": True}
    with pytest.raises(ValueError, match="'width' is not key=value"):
        settings.key_values(["width"])
