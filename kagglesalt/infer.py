"""`kagglesalt predict`: salt masks for new 101x101 images with a finished run.

Every fold's models (snapshots included) predict each image and its mirror image; the mean
probability is cut at the run's OOF threshold and cleaned with the post-processing chosen
on its OOF, exactly as the run's own test predictions are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from kagglesalt import data, metric, plugins, predict, submission
from kagglesalt.atomic import atomic_path
from kagglesalt.errors import KaggleSaltError
from kagglesalt.runs import Run


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


def load_models(run: Run, plugins_dir: str | os.PathLike | None = None) -> list:
    """Every fold model of a finished run."""
    from kagglesalt.backend import import_keras

    keras = import_keras()
    run.require_finished()
    # A plugin's custom layers must be registered before its models load.
    plugins.models(plugins_dir)
    paths = [p for k in range(run.n_folds) for p in run.fold_models(k)]
    if not paths:
        raise KaggleSaltError(f"run {run.name} has no saved models (made before they were "
                              "kept): train it again")
    for k in range(run.n_folds):  # never predict with less than the run says it has
        problem = run.fold_problem(k)
        if problem:
            raise KaggleSaltError(f"{problem}: rerun the run's `kagglesalt cv` command to "
                                  f"train fold {k + 1} again")
    return [keras.models.load_model(p, compile=False) for p in paths]


def predict_masks(run: Run, images: np.ndarray, models: list | None = None,
                  batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 probability levels, bool masks) of uint8 images (N, 101, 101)."""
    chosen = run.settings()
    models = models if models is not None else load_models(run)
    levels = predict.levels(models, images, chosen.input_size, chosen.input_mode,
                            chosen.logits, tta=True, batch_size=batch_size)
    return levels, run.postprocess()(metric.binarize(levels, run.threshold))


def write_pngs(folder: str | os.PathLike, ids: Sequence[str], masks: np.ndarray) -> Path:
    """Each mask as `<id>.png`, 8-bit 0/255, beside nothing else."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, mask in zip(ids, masks, strict=True):
        with atomic_path(folder / f"{i}.png") as tmp:
            ok, encoded = cv2.imencode(".png", mask.astype(np.uint8) * 255)
            tmp.write_bytes(encoded.tobytes())
    return folder


def predict_files(run: Run, paths: Sequence[str | os.PathLike], png_dir: Path | None,
                  csv: Path | None, plugins_dir: str | os.PathLike | None = None
                  ) -> tuple[list[str], np.ndarray]:
    """Masks for the images in `paths`, written as PNGs into `png_dir` and/or as a
    submission-format CSV; returns (ids, masks)."""
    files = image_files(paths)
    images = np.stack([data.read_image(f) for f in files])
    ids = [f.stem for f in files]
    _, masks = predict_masks(run, images, load_models(run, plugins_dir))
    if png_dir is not None:
        write_pngs(png_dir, ids, masks)
    if csv is not None:
        submission.write(csv, ids, masks)
    return ids, masks
