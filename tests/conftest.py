import json
import os
import shutil
from pathlib import Path

import pytest

from tests.kaggle_server import FakeKaggle, competition_zip

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "tgs-salt"


@pytest.fixture(autouse=True)
def fresh_plugins():
    """Every test starts with a fresh plugin manager (plugins load again on first use)."""
    from kagglesalt import plugins

    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A package installed beside kagglesalt, salty-models, whose entry point registers
    the example model `tiny`."""
    import sys

    package = tmp_path / "site"
    (package / "salty_models").mkdir(parents=True)
    examples = Path(__file__).parent / "plugin_examples"
    shutil.copy(examples / "tiny_model.py", package / "salty_models" / "__init__.py")
    info = package / "salty_models-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: salty-models\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[kagglesalt]\nsalty = salty_models\n")
    monkeypatch.syspath_prepend(str(package))
    yield "salty-models"
    sys.modules.pop("salty_models", None)


@pytest.fixture(scope="session")
def synthetic_master(tmp_path_factory) -> Path:
    """A small synthetic data set, generated once per test session."""
    from kagglesalt.data import synth

    return synth.generate(tmp_path_factory.mktemp("synth") / "data", n_train=120, n_test=30,
                          seed=7)


@pytest.fixture
def synthetic_data(synthetic_master, tmp_path) -> Path:
    """A private copy of the synthetic data set that a test may damage."""
    return Path(shutil.copytree(synthetic_master, tmp_path / "data"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not (REAL_DATA / "train.csv").exists():
        pytest.skip(f"real TGS data not present at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def real_train(real_data, tmp_path_factory):
    """The real training set, loaded with its cache kept out of the shared folder."""
    from kagglesalt import data

    return data.load_train(real_data, cache_dir=tmp_path_factory.mktemp("real-cache"))


EXAMPLES = Path(__file__).parent / "plugin_examples"


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, synthetic_master):
    """`trained_run(ws, name, **settings)`: a finished 2-fold run of the tiny test model on
    the session's synthetic data, in `ws`'s runs folder. Each (name, settings) is trained
    once per session and copied into every workspace that asks for it, so tests may change
    their copy. The tiny model stays a workspace plugin (`plugin_examples/`): runs record
    their plugins folder, and the commands that load a run's models find it there."""
    from kagglesalt import cv, runs
    from kagglesalt.workspace import Workspace

    cache = tmp_path_factory.mktemp("trained-runs")
    made: dict[tuple[str, str], Path] = {}

    def trained_run(ws, name: str, **settings):
        key = (name, json.dumps(settings, sort_keys=True))
        if key not in made:
            home = Workspace(synthetic_master, cache / str(len(made)), cache / "unused")
            options = cv.CVOptions("tiny", 2, name, str(EXAMPLES), {"epochs": 2, **settings})
            made[key] = cv.run_cv(home, options).path
        target = Path(ws.runs_dir) / name
        shutil.copytree(made[key], target)
        return runs.open_run(ws.runs_dir, name)

    return trained_run


# The Kaggle commands' world: a home with credentials, the local Kaggle-compatible server.


@pytest.fixture(scope="module")
def archive(synthetic_master):
    return competition_zip(synthetic_master)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A user's machine: a home with kaggle.json, the client pointed at the local server."""
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    credentials = home / ".kaggle" / "kaggle.json"
    credentials.write_text(json.dumps({"username": "alice", "key": "s3cret-key"}))
    credentials.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    for name in ("KAGGLE_CONFIG_DIR", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN",
                 "NO_PROXY", "no_proxy", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def server(archive, workspace, monkeypatch):
    with FakeKaggle(archive, "tgs-salt-identification-challenge") as fake:
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{fake.port}")
        yield fake


@pytest.fixture
def with_data(server, workspace):
    from click.testing import CliRunner

    from kagglesalt.cli import cli

    assert CliRunner().invoke(cli, ["download"]).exit_code == 0
    server.requests.clear()
    return workspace
