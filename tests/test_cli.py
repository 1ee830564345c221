import shutil

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from kagglesalt import __version__
from kagglesalt.cli import cli


def run(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_version_and_help():
    assert __version__ in run("--version").output
    assert "synth" in run("--help").output


def test_synth_writes_a_data_set_the_loader_reads(tmp_path):
    from kagglesalt import data

    result = run("--data-dir", str(tmp_path / "d"), "synth", "--train", "12", "--test", "4")
    assert result.exit_code == 0, result.output
    assert len(data.load_train(tmp_path / "d")) == 12


def test_data_folder_comes_from_the_environment(tmp_path):
    result = run("synth", "--train", "3", "--test", "1",
                 env={"KAGGLESALT_DATA_DIR": str(tmp_path / "env")})
    assert result.exit_code == 0 and (tmp_path / "env" / "train.csv").exists()


def perturbed_submission(truth_csv, path, drop=0):
    table = pd.read_csv(truth_csv, dtype=str, keep_default_na=False)
    table.loc[: len(table) // 3, "rle_mask"] = ""
    table.iloc[drop:].to_csv(path, index=False)
    return table


def test_score_compares_a_submission_with_known_masks(synthetic_data, tmp_path):
    from kagglesalt import data
    from kagglesalt.competition import metric, rle

    truth = data.load_train(synthetic_data)
    perturbed_submission(synthetic_data / "train.csv", tmp_path / "sub.csv")
    table = pd.read_csv(tmp_path / "sub.csv", dtype=str, keep_default_na=False)
    pred = rle.decode_many(list(table.set_index("id").loc[truth.ids, "rle_mask"]))
    result = run("--data-dir", str(synthetic_data), "score", str(tmp_path / "sub.csv"))
    assert result.exit_code == 0
    assert f"{metric.score(truth.masks, pred):.6f}" in result.output


def test_score_refuses_rows_missing_from_the_submission(synthetic_data, tmp_path):
    perturbed_submission(synthetic_data / "train.csv", tmp_path / "sub.csv", drop=2)
    result = run("score", str(tmp_path / "sub.csv"), "--truth",
                 str(synthetic_data / "train.csv"))
    assert result.exit_code == 1
    assert "lacks 2 id(s)" in result.output and "Traceback" not in result.output


def test_score_refuses_a_malformed_rle_naming_line_and_id(synthetic_data, tmp_path):
    shutil.copy(synthetic_data / "train.csv", tmp_path / "sub.csv")
    lines = (tmp_path / "sub.csv").read_text().splitlines()
    image_id = lines[3].split(",")[0]
    lines[3] = f"{image_id},7 3 5 1"
    (tmp_path / "sub.csv").write_text("\n".join(lines) + "\n")
    result = run("score", str(tmp_path / "sub.csv"), "--truth",
                 str(synthetic_data / "train.csv"))
    assert result.exit_code == 1
    assert f"line 4: malformed RLE for id {image_id}" in result.output


@pytest.mark.parametrize("content, message", [
    ("image,mask\na,\n", "expected 'id,rle_mask'"),
    ("id,rle_mask\na,\na,1 1\n", "id a appears twice"),
])
def test_score_refuses_a_wrong_header_or_duplicate_ids(tmp_path, content, message):
    (tmp_path / "sub.csv").write_text(content)
    (tmp_path / "truth.csv").write_text("id,rle_mask\na,\n")
    result = run("score", str(tmp_path / "sub.csv"), "--truth", str(tmp_path / "truth.csv"))
    assert result.exit_code == 1 and message in result.output


def test_an_unwritable_folder_is_one_line_not_a_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run("--data-dir", str(blocker / "data"), "synth", "--train", "2", "--test", "1")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("Error: File exists:")
    assert "Traceback" not in result.output


def test_printed_commands_can_be_pasted_with_the_folders_given(tmp_path):
    from kagglesalt.cli.app import pasteable

    folder = tmp_path / "my data"

    @cli.command("echo-next", hidden=True)
    def echo_next():
        click.echo(pasteable("score", folder / "a b.csv"))

    try:
        result = CliRunner().invoke(cli, ["--data-dir", str(folder), "echo-next"])
    finally:
        cli.commands.pop("echo-next")
    import shlex

    words = shlex.split(result.output)
    assert words == ["kagglesalt", "--data-dir", str(folder), "score", str(folder / "a b.csv")]


def test_synth_refuses_an_existing_data_set_before_drawing_a_bar(tmp_path):
    args = ["--data-dir", str(tmp_path / "d"), "synth", "--train", "4", "--test", "1"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "already holds a data set" in again.output
    assert "synthesising" not in again.output


def test_fold_resources_without_ray_are_refused(tmp_path):
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "cv", "--gpus-per-fold",
                                      "0.5"])
    assert result.exit_code == 2 and "apply to folds on Ray: add --ray" in result.output


def test_a_corrupt_png_of_ones_own_is_not_told_to_download_again(tmp_path):
    from kagglesalt import data
    from kagglesalt.errors import KaggleSaltError

    (tmp_path / "mine.png").write_bytes(b"not a png")
    with pytest.raises(KaggleSaltError, match="not a readable PNG: replace it with a whole "
                                              "copy"):
        data.read_image(tmp_path / "mine.png")


def test_a_read_only_folder_is_named_not_a_hidden_temporary(tmp_path, monkeypatch):
    import errno

    from kagglesalt import atomic

    def refused(prefix, suffix, dir):
        raise PermissionError(errno.EACCES, "Permission denied", f"{dir}/{prefix}x{suffix}")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refused)
    with pytest.raises(OSError) as raised:
        atomic.write_text(tmp_path / "x.json", "{}")
    assert raised.value.filename == str(tmp_path)


@pytest.mark.parametrize("option, text", [("--param", "width"), ("--augment", "x"),
                                          ("--set", "epochs")])
def test_a_key_without_a_value_is_one_line_naming_the_option_and_its_form(tmp_path, option,
                                                                         text):
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "--runs-dir",
                                      str(tmp_path / "runs"), "cv", "--model", "unet_lite",
                                      option, text])
    assert result.exit_code == 2, result.output
    assert f"'{text}' is not key=value: give {option} key=value" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "runs").exists()
