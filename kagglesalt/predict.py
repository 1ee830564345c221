"""`kagglesalt predict`: salt masks for new 101x101 images with a finished run or with an
ensemble submission.

Every fold's models (snapshots included) predict each image and its mirror image, each fold
is quantised and the folds averaged exactly as `kagglesalt cv` does for its test images;
a run cuts at its OOF threshold and cleans with the post-processing chosen on its OOF, an
ensemble combines its runs with its weights, threshold and post-processing. Given the
competition's test images, a run gives its own test masks and an ensemble its submission.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from kagglesalt import data, plugins
from kagglesalt.atomic import atomic_path
from kagglesalt.competition import metric, submission
from kagglesalt.errors import KaggleSaltError
from kagglesalt.model import inference
from kagglesalt.workspace.runs import Run


def image_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """PNG files given one by one or as folders (their *.png, sorted by name)."""
    files: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            found = sorted(given.glob("*.png"))
            if not found:
                raise KaggleSaltError(f"{given} holds no .png images")
            files += found
        elif given.is_file():
            files.append(given)
        else:
            raise KaggleSaltError(f"{given} does not exist: give PNG files or folders of them")
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        double = next(s for s in stems if stems.count(s) > 1)
        raise KaggleSaltError(f"two images are named {double}: masks are named after images, "
                              "so names must be unique")
    return files


def load_models(run: Run, plugins_dir: str | os.PathLike | None = None) -> list[list]:
    """The models of a finished run, fold by fold (the best epoch's, or the snapshots)."""
    from kagglesalt.model.backend import import_keras

    keras = import_keras()
    from kagglesalt.model import layers  # noqa: F401  kagglesalt's own layers, registered

    run.require_finished()
    # A plugin's custom layers must be registered before its models load.
    plugins.models(plugins_dir)
    if not any(run.fold_models(k) for k in range(run.n_folds)):
        raise KaggleSaltError(f"run {run.name} has no saved models (made before they were "
                              "kept): train it again")
    for k in range(run.n_folds):  # never predict with less than the run says it has
        problem = run.fold_problem(k)
        if problem:
            raise KaggleSaltError(f"{problem}: rerun the run's `kagglesalt cv` command to "
                                  f"train fold {k + 1} again")
    return [[keras.models.load_model(p, compile=False) for p in run.fold_models(k)]
            for k in range(run.n_folds)]


def run_levels(run: Run, images: np.ndarray, folds: list[list]) -> np.ndarray:
    """uint8 levels of uint8 images (N, 101, 101) computed as `kagglesalt cv` computes its
    test predictions: each fold's models with flip TTA, quantised, then the rounded mean of
    the folds; so a run's (and an ensemble's) own test masks come out the same."""
    chosen = run.settings()
    batch = inference.batch_size(chosen.batch_size)  # as in training, to the last bit
    return metric.mean_levels([inference.levels(models, images, chosen.input_size,
                                              chosen.input_mode, chosen.logits,
                                              batch_size=batch) for models in folds])


def predict_masks(run: Run, images: np.ndarray, folds: list[list] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 probability levels, bool masks) of uint8 images (N, 101, 101) with a run: its
    OOF threshold and post-processing."""
    levels = run_levels(run, images, folds if folds is not None else load_models(run))
    return levels, run.postprocess()(metric.binarize(levels, run.threshold))


def ensemble_masks(ws, record_path: Path, images: np.ndarray,
                   plugins_dir: str | os.PathLike | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(levels, masks) with an ensemble submission's runs, weights, threshold and
    post-processing, as `kagglesalt ensemble` made its CSV."""
    from kagglesalt.competition.postprocess import PostProcess
    from kagglesalt.workspace import runs, submissions

    record = submissions.require_ensemble(record_path)
    members = [runs.open_run(ws.runs_dir, name) for name in record.weights]
    levels = metric.combine([run_levels(run, images, load_models(run, plugins_dir))
                             for run in members], list(record.weights.values()))
    rule = PostProcess(**record.postprocess)
    return levels, rule(metric.binarize(levels, record.threshold))


def write_pngs(folder: str | os.PathLike, ids: Sequence[str], masks: np.ndarray) -> Path:
    """Each mask as `<id>.png`, 8-bit 0/255, beside nothing else."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, mask in zip(ids, masks, strict=True):
        with atomic_path(folder / f"{i}.png") as tmp:
            ok, encoded = cv2.imencode(".png", mask.astype(np.uint8) * 255)
            tmp.write_bytes(encoded.tobytes())
    return folder


def predict_files(ws, name: str, paths: Sequence[str | os.PathLike], png_dir: Path | None,
                  csv: Path | None, plugins_dir: str | os.PathLike | None = None
                  ) -> tuple[list[str], np.ndarray]:
    """Masks for the images in `paths` with run or ensemble submission `name`, written as
    PNGs into `png_dir` and/or as a submission-format CSV; returns (ids, masks)."""
    from kagglesalt.workspace import resolve, runs

    target = resolve(ws, name)
    ensemble, record = target.kind == "ensemble", target.path
    run = None if ensemble else runs.Run(target.path)
    files = image_files(paths)
    images = np.stack([data.read_image(f) for f in files])
    ids = [f.stem for f in files]
    if run is None:
        _, masks = ensemble_masks(ws, record, images, plugins_dir)
    else:
        _, masks = predict_masks(run, images, load_models(run, plugins_dir))
    if png_dir is not None:
        write_pngs(png_dir, ids, masks)
    if csv is not None:
        submission.write(csv, ids, masks)
    return ids, masks
