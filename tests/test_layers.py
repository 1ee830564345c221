"""The layers the package is built in, checked: Keras only in the model layer (and the
commands that load models), click and rich only in the command line, the competition's rules
on numpy alone, the lower layers never importing the commands above them, and the planning,
progress and workspace modules importable without Keras."""

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kagglesalt"
LAYERS = ("competition", "data", "model", "workspace", "cli")
# Below the commands: what each layer may import of the package, besides the foundation.
ALLOWED = {
    "competition": set(),
    "data": {"competition"},
    "model": {"competition"},
    "workspace": {"competition", "data", "model"},
}
FOUNDATION = {"errors", "atomic", "timestamps", "progress"}
# The commands as functions; `kernels` runs `cv` on Kaggle, `on_kaggle` is its side there.
COMMANDS = {"cv", "ensemble", "predict", "report", "submit", "demo", "kernels", "on_kaggle"}
# Outside the model layer, the modules that import Keras themselves: the prediction command
# loads the fold models it predicts with.
KERAS_COMMANDS = {"predict"}
KERAS_FREE = ["model.budget", "model.schedule", "model.settings", "model.experiments",
              "model.spec", "model.results", "progress", "workspace.runs",
              "workspace.submissions", "data", "data.synth", "data.folds", "ensemble", "report",
              "competition.submission", "competition.metric", "competition.rle",
              "competition.postprocess", "plugins", "workspace", "timestamps"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(module: str) -> set[str]:
    """Every module `module` imports, at the top or inside a function."""
    tree = ast.parse(MODULES[module].read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module.startswith("kagglesalt"):
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def ours(module: str) -> set[str]:
    """The top-level parts of the package that `module` imports (a layer or a module)."""
    return {name.split(".")[1] for name in imports(module)
            if name.startswith("kagglesalt.") and name.split(".")[1] != "__version__"}


def layer(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_keras_click_and_rich_stay_in_their_layers(module):
    roots = {name.split(".")[0] for name in imports(module)}
    if layer(module) != "model" and module not in KERAS_COMMANDS:
        assert not roots & {"keras", "tensorflow", "jax", "torch"}, module
    if layer(module) != "cli" and module != "__main__":
        assert not roots & {"click", "rich"}, module


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) in ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(module):
    allowed = ALLOWED[layer(module)] | FOUNDATION | {layer(module)}
    assert ours(module) <= allowed, (module, ours(module) - allowed)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) not in LAYERS))
def test_only_the_commands_and_the_command_line_import_the_commands(module):
    assert not ours(module) & (COMMANDS - {module}) or module in COMMANDS, module


def test_the_layers_are_folders():
    assert all((PACKAGE / name / "__init__.py").exists() for name in LAYERS)
    flat = {m for m in MODULES if "." not in m} - {"__init__", "__main__", *LAYERS}
    assert flat <= COMMANDS | FOUNDATION | {"hookspecs", "plugins", "kaggle", "distributed",
                                            "reaper"}, \
        flat - COMMANDS - FOUNDATION


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
    from kagglesalt import cv, data, metric, rle, runs  # noqa: F401
    from kagglesalt.workspace import Workspace  # noqa: F401

    assert kagglesalt.__version__.count(".") == 2
    for name in set(kagglesalt.__all__) - {"__version__"}:
        module = getattr(kagglesalt, name)
        assert isinstance(module, types.ModuleType) and \
            module.__name__.startswith("kagglesalt."), name
