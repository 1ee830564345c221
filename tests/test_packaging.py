"""The one list of dependencies: the JAX test environment installs pyproject.toml's,
less TensorFlow."""

import configparser
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_the_jax_environment_installs_the_projects_dependencies_less_tensorflow():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [d for d in project["dependencies"] if not d.startswith("tensorflow")]
    wanted += project["optional-dependencies"]["jax"] + project["optional-dependencies"]["test"]
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    listed = [line.strip() for line in tox["testenv:jax"]["deps"].splitlines() if line.strip()]
    assert sorted(listed) == sorted(wanted)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_every_package_folder_is_in_the_wheel():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "kagglesalt").rglob("__init__.py")}
    assert folders | {"kagglesalt_plugins"} == listed
