import os
import shutil
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def synthetic_master(tmp_path_factory) -> Path:
    """A small synthetic data set, generated once per test session."""
    from kagglesalt import synth

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
