"""The layers the package is built in, checked: Keras only on the model side, click and rich
only in the command line, the competition's rules on numpy alone, and the planning,
progress and workspace modules importable without Keras."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kagglesalt"
# The model side: the only modules that import Keras (or a backend) themselves.
MODEL = {"backend", "train", "losses", "predict", "infer"}
CLI = {"cli", "console", "__main__"}
# The competition's rules and formats: numpy and pandas, nothing of the package but these.
COMPETITION = {"rle", "metric", "postprocess", "submission"}
FOUNDATION = {"errors", "atomic", "timestamps"}
# Modules a notebook or the CLI uses without paying for Keras.
KERAS_FREE = ["budget", "schedule", "progress", "settings", "runs", "submissions", "data", "synth",
              "folds", "ensemble", "report", "submission", "metric", "rle", "postprocess",
              "plugins", "model_spec", "workspace", "timestamps"]


def imports(module: str) -> set[str]:
    """Every module `module` imports, at the top or inside a function."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "kagglesalt":
                found |= {f"kagglesalt.{alias.name}" for alias in node.names}
    return found


MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", MODULES)
def test_keras_click_and_rich_stay_in_their_layers(module):
    roots = {name.split(".")[0] for name in imports(module)}
    if module not in MODEL:
        assert not roots & {"keras", "tensorflow", "jax", "torch"}, module
    if module not in CLI:
        assert not roots & {"click", "rich"}, module


@pytest.mark.parametrize("module", sorted(COMPETITION))
def test_the_competition_layer_imports_no_other_layer(module):
    ours = {name.split(".")[1] for name in imports(module)
            if name.startswith("kagglesalt.") and name.count(".") >= 1}
    assert ours <= COMPETITION | FOUNDATION, (module, ours - COMPETITION - FOUNDATION)


def test_planning_progress_and_the_workspace_load_without_keras():
    code = ("import sys\n"
            + "".join(f"import kagglesalt.{m}\n" for m in KERAS_FREE)
            + "heavy = [m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules]\n"
            + "print(heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_the_notebook_imports_of_the_readme_work():
    import kagglesalt
    from kagglesalt import data, metric, rle  # noqa: F401

    for name in kagglesalt.__all__:
        assert getattr(kagglesalt, name) is not None, name
