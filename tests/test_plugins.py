import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kagglesalt import plugins
from kagglesalt.cli import cli
from kagglesalt.errors import KaggleSaltError

EXAMPLES = Path(__file__).parent / "plugin_examples"


def test_shipped_models_register_through_the_hooks():
    found = plugins.models()
    assert {"unet", "unet_deep"} <= set(found)
    assert found["unet"].source == "built-in"
    assert plugins.pm.has_plugin("kagglesalt_plugins.unet")
    deep = found["unet_deep"]
    assert deep.default("logits") is True and deep.default("loss") == "bce+lovasz"


def test_models_command_lists_name_origin_parameters_and_description(tmp_path):
    shutil.copy(EXAMPLES / "tiny_model.py", tmp_path)
    result = CliRunner().invoke(cli, ["models", "--plugins-dir", str(tmp_path)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "start_filters=16" in result.output  # unet_deep's parameters, nothing built
    assert "tiny" in result.output and "plugins dir" in result.output
    assert "classic notebook U-Net" in result.output


def test_a_broken_plugin_is_named_and_the_rest_still_work(tmp_path):
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    (tmp_path / "bad_register.py").write_text(textwrap.dedent("""
        from kagglesalt.hookspecs import hookimpl

        @hookimpl
        def register_models(register):
            raise RuntimeError("oops")
    """))
    shutil.copy(EXAMPLES / "tiny_model.py", tmp_path)
    result = CliRunner().invoke(cli, ["models", "--plugins-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "broken.py is broken" in result.output and "not_a_module_anywhere" in result.output
    assert "bad_register.py is broken" in result.output and "oops" in result.output
    assert "tiny" in result.output and "unet_deep" in result.output


def test_an_installed_package_is_found_by_its_entry_point(installed_plugin):
    found = plugins.models()
    assert found["tiny"].source == f"entry point ({installed_plugin})"


def test_a_command_plugin_adds_a_command(monkeypatch):
    monkeypatch.setenv("KAGGLESALT_PLUGINS_DIR", str(EXAMPLES))
    plugins.register_commands(cli)
    try:
        result = CliRunner().invoke(cli, ["hello", "salt"])
        assert result.exit_code == 0 and result.output == "hello salt\n"
    finally:
        cli.commands.pop("hello", None)


def test_an_unknown_model_names_the_available_ones():
    with pytest.raises(KaggleSaltError, match="no model named 'nope'.*unet_deep"):
        plugins.get_model("nope")


def test_a_plugin_that_takes_a_registered_name_is_refused_not_swapped_in(tmp_path):
    (tmp_path / "impostor.py").write_text(textwrap.dedent("""
        from kagglesalt.hookspecs import hookimpl

        @hookimpl
        def register_models(register):
            register("unet", lambda input_size=128: None, description="not the classic one")
    """))
    found = plugins.models(tmp_path)
    assert found["unet"].source == "built-in"
    assert found["unet"].description.startswith("classic notebook U-Net")
    assert plugins.broken()[f"{tmp_path.name}/impostor.py"] == \
        "ValueError: model unet is already registered by built-in: give it another name"


@pytest.mark.parametrize("body, reason", [
    ("import sys\nsys.exit(3)\n", "it called sys.exit(3)"),
    ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    ("raise SystemExit\n", "it called sys.exit(None)"),
])
def test_a_plugin_that_exits_or_interrupts_at_import_ends_no_command(tmp_path, body, reason):
    (tmp_path / "quitter.py").write_text(body)
    env = {"KAGGLESALT_PLUGINS_DIR": str(tmp_path)}
    outputs = {}
    for args in (["--help"], ["runs"], ["models"]):
        result = subprocess.run([sys.executable, "-m", "kagglesalt", *args],
                                capture_output=True, text=True, env={**os.environ, **env},
                                cwd=tmp_path, timeout=120)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        outputs[args[0]] = result.stdout
    assert "quitter.py is broken" in outputs["models"] and reason in outputs["models"]
    assert "unet_lite" in outputs["models"] and "Usage" in outputs["--help"]
