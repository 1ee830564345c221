"""What runs inside a Kaggle kernel that `kagglesalt cv --on-kaggle` pushed.

`python -m kagglesalt.on_kaggle JOB.json` (the kernel's script installs the carried wheel,
then calls this): names any package the image lacks, finds the competition under the input
folder (as folders or as zips), checks that it would train what the run's config.json,
written at home, says (`check_config`), trains with JAX where it sees a GPU and JAX is
there, else with TensorFlow, and writes the run into the working folder, Kaggle's output,
with a manifest of checksums at each fold's start and at the end (`workspace.manifest`),
so that whatever a session cut short leaves behind is known whole or not.

Kaggle's folders are under /kaggle; KAGGLESALT_KAGGLE_ROOT moves them (the tests' server).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT_ENV = "KAGGLESALT_KAGGLE_ROOT"
RUNS = "runs"  # the run folders, under the working folder
SAID = "kagglesalt: "  # the start of this module's lines in the kernel's log (`said`)
# import name -> the package to install, for what kagglesalt imports on a kernel
NEEDED = {"keras": "keras", "numpy": "numpy", "pandas": "pandas", "cv2": "opencv-python",
          "click": "click", "rich": "rich", "sklearn": "scikit-learn", "pluggy": "pluggy",
          "filelock": "filelock"}


def say(text: str) -> None:
    print(f"{SAID}{text}", flush=True)


def kaggle_root() -> Path:
    return Path(os.environ.get(ROOT_ENV, "/kaggle"))


def missing_packages() -> list[str]:
    return [package for module, package in NEEDED.items()
            if importlib.util.find_spec(module) is None]


def find_competition(input_dir: Path, competition: str, scratch: Path) -> Path:
    """The competition's data folder in the Kaggle layout: the mounted folder itself, or,
    where Kaggle mounted train.zip and test.zip, those unpacked into `scratch`."""
    from kagglesalt import data
    from kagglesalt.errors import KaggleSaltError
    from kagglesalt.kaggle import unpack_nested

    found = sorted((p.parent for p in input_dir.rglob("train.csv")),
                   key=lambda p: (competition not in p.parts, len(p.parts)))
    if not found:
        raise KaggleSaltError(f"no train.csv under {input_dir}: the kernel lacks the "
                              f"competition {competition} as a data source")
    root = found[0]
    if data.layout_complete(root):
        return root
    if not (root / "train.zip").is_file():
        raise KaggleSaltError(f"{root} holds neither the Kaggle layout nor train.zip")
    scratch.mkdir(parents=True, exist_ok=True)
    for item in root.iterdir():  # the CSVs and the zips, unpacked where we may write
        if item.is_file():
            shutil.copyfile(item, scratch / item.name)
    unpack_nested(scratch)
    if not data.layout_complete(scratch):
        missing = next(p for p in data.LAYOUT if not (scratch / p).exists())
        raise KaggleSaltError(f"the competition under {root} has no {missing}")
    return scratch


def choose_backend() -> str:
    """JAX on a GPU where the image has it (the faster backend there), else TensorFlow."""
    if "KERAS_BACKEND" in os.environ:
        return os.environ["KERAS_BACKEND"]
    from kagglesalt.model.backend import backend_gpus, machine_gpus

    if not machine_gpus() or importlib.util.find_spec("jax") is None:
        return "tensorflow"
    # An image's JAX may be a CPU build (or not start): then TensorFlow, which has the GPU.
    return "jax" if backend_gpus("jax") else "tensorflow"


def placement(gpus: int, has_ray: bool, folds: int) -> dict[str, Any]:
    """Where the folds train: with two GPUs or more (Kaggle's T4 x2) and Ray in the image
    (Kaggle's has it), a fold on each GPU at once, as `cv --ray --gpus-per-fold 1` does;
    else one after another on the first GPU."""
    if gpus >= 2 and has_ray and folds >= 2:
        return {"ray": "local", "gpus_per_fold": 1.0}
    return {}


def check_config(options, planned: dict[str, Any]) -> str | None:
    """What this kernel would train otherwise than the run's config.json written at home
    says, in words (None: nothing): the model, folds, seed and every setting, as this
    kernel's kagglesalt resolves the options. With a budget the epochs are chosen here."""
    import dataclasses

    from kagglesalt import cv
    from kagglesalt.model import settings
    from kagglesalt.workspace.runs import RunConfig

    wanted = RunConfig.from_json(planned)
    _, chosen = cv.check_options(options)
    resolved = json.loads(json.dumps(settings.as_config(chosen)))  # JSON's view, as written
    mine = dataclasses.replace(wanted, model=options.model, folds=options.folds,
                               settings=resolved)
    if options.minutes is not None:
        mine = dataclasses.replace(mine, settings={**resolved,
                                                   "epochs": wanted.settings.get("epochs")})
    return ", ".join(mine.differences(wanted)) or None  # the seed is a setting


def _take_finished_folds(input_dir: Path, run: str, run_path: Path) -> None:
    """The previous version's output is an input of this one (a kernel source): its run
    folder, what its manifest vouches for, is where this run goes on from."""
    from kagglesalt.workspace import manifest

    found = sorted(input_dir.rglob(f"{RUNS}/{run}/{manifest.MANIFEST}"))
    if not found:
        say(f"The previous version left no run {run}: starting it anew")
        return
    shutil.copytree(found[0].parent, run_path)
    for name in manifest.keep_whole(run_path):
        say(f"from the previous version: {name} is not whole and is trained again")


def run_job(job: dict[str, Any], root: Path) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="kagglesalt-"))
    plugins_dir = None
    if job.get("plugins"):
        plugins_dir = scratch / "plugins"
        plugins_dir.mkdir()
        for name, source in job["plugins"].items():
            (plugins_dir / Path(name).name).write_text(source)
    os.environ["KERAS_BACKEND"] = choose_backend()
    from kagglesalt.model.backend import import_keras

    import_keras()  # without TensorFlow's chatter in the log the command line follows
    from kagglesalt import cv
    from kagglesalt.errors import KaggleSaltError
    from kagglesalt.progress import Reporter
    from kagglesalt.workspace import Workspace, manifest

    working = root / "working"
    try:
        data_dir = find_competition(root / "input", job["competition"], scratch / "data")
    except KaggleSaltError as e:
        say(f"Error: {e}")
        return 1
    from kagglesalt.model.backend import machine_gpus

    gpus = len(machine_gpus())
    where = placement(gpus, importlib.util.find_spec("ray") is not None,
                      job["options"]["folds"])
    if where:
        say(f"{gpus} GPUs: a fold on each at once, on a local Ray instance")
    options = cv.CVOptions(plugins_dir=str(plugins_dir) if plugins_dir else None,
                           **job["options"], **where)
    run_path = working / RUNS / job["run"]
    if job.get("resume_from"):
        _take_finished_folds(root / "input", job["run"], run_path)

    class Said(Reporter):
        """Lines in the kernel's log (what `cv --on-kaggle` shows while it follows), and
        the manifest at each fold's start, when every earlier fold is written."""

        def fold_start(self, fold: int, folds: int, epochs: int, steps: int) -> None:
            if run_path.is_dir():
                manifest.write(run_path)
            say(f"fold {fold + 1}/{folds}: {epochs} epochs")

        def epoch_end(self, epoch: int, row: dict[str, float]) -> None:
            scored = f", valid {row['val_score']:.4f}" if "val_score" in row else ""
            say(f"epoch {epoch}: loss {row.get('loss', float('nan')):.4f}{scored}")

        def fold_end(self, fold: int, score: float) -> None:
            say(f"fold {fold + 1} done: score {score:.4f}")

        def message(self, text: str) -> None:
            say(text)

    import kagglesalt

    say(f"kagglesalt {kagglesalt.__version__} (from {Path(kagglesalt.__file__).parent}) "
        f"runs {job['run']} on Kaggle, Keras on {os.environ['KERAS_BACKEND']}; data "
        f"{data_dir}")
    ws = Workspace(data_dir, working / RUNS, working / "submissions")
    try:
        differ = check_config(options, job["config"]) if job.get("config") else None
        if differ:
            raise KaggleSaltError(
                f"this kernel would train run {job['run']} otherwise than the config.json "
                f"written at home (\"there\") says: {differ}; push it again from the "
                "kagglesalt that wrote it")
        run = cv.run_cv(ws, options, Said())
    except KaggleSaltError as e:
        say(f"Error: {e}")
        return 1
    finally:
        if run_path.is_dir():
            manifest.write(run_path)
        shutil.rmtree(scratch, ignore_errors=True)
    say(f"OOF score {run.oof_score:.4f}; run folder {RUNS}/{run.name}")
    return 0


def main(argv: list[str]) -> int:
    missing = missing_packages()
    if missing:
        say(f"Error: this Kaggle image lacks {', '.join(missing)}, which kagglesalt needs: "
            "choose a newer image (the kernel's settings) or add them as a data source")
        return 2
    job = json.loads(Path(argv[0]).read_text())
    return run_job(job, kaggle_root())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
