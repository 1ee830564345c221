"""A message names the options it asks for in the words of its reader: keywords from
Python, the flags of the command that ran on the command line."""

import click
import pytest
from click.testing import CliRunner

from kagglesalt.cli import cli
from kagglesalt.cli.flags import flag_writer, for_command_line
from kagglesalt.data import synth
from kagglesalt.errors import KaggleSaltError, Message, option, render


def test_options_read_as_keywords_from_python():
    text = f"use {option('force', True)}, or give {option('folds', 3)} and a new {option('name')}"
    assert render(text) == "use force=True, or give folds=3 and a new name"
    assert str(KaggleSaltError(text)) == render(text)
    assert str(Message(text)) == render(text) and Message(text).template == text


def test_the_command_line_writes_them_as_the_running_commands_flags():
    ctx = click.Context(cli, info_name="kagglesalt")
    ctx.invoked_subcommand = "ensemble"
    write = flag_writer(ctx)
    text = (f"{option('post', repr('x'))}; {option('threshold', 2)}; {option('force', True)}; "
            f"{option('data_dir')}; {option('ray', 'local')}; {option('validate_every', 1)}")
    # the ensemble's own --postprocess (its keyword is `post`), a flag without its value,
    # a global option, and names no option of this command has (from cv, or dashed)
    assert render(text, write) == ("--postprocess 'x'; --threshold 2; --force; --data-dir; "
                                   "--ray local; --validate-every 1")


def test_a_library_error_on_the_command_line_names_the_flags(tmp_path):
    data = tmp_path / "data"
    synth.generate(data, 3, 1)
    with pytest.raises(KaggleSaltError) as raised:
        synth.generate(data, 3, 1)
    assert "use force=True to replace it, or choose another data_dir" in str(raised.value)
    result = CliRunner().invoke(cli, ["--data-dir", str(data), "synth", "--train", "3",
                                      "--test", "1"])
    assert result.exit_code == 1
    assert "use --force to replace it, or choose another --data-dir" in result.output
    assert "\x1e" not in result.output and "force=True" not in result.output


def test_plain_text_passes_through_unchanged():
    assert for_command_line("nothing to name --here") == "nothing to name --here"
