"""Pseudo-labels: test images with the masks a finished run or ensemble predicted for them,
as extra training images for every fold of a new run (the 1st place's key step in TGS).

Only confident images are taken: an image is confident when at least `confidence` of its
pixels are sure, a pixel being sure when its predicted probability is at least `MARGIN`
from the source's threshold (an empty prediction is sure when every pixel is far below it).
The pseudo-labelled images only ever train: the folds, the validation scores and the OOF
score stay on the real labels alone. That OOF is still a little optimistic: the source's
models trained on every training image, so what they learned of a fold's held-out images
reaches that fold through the test images' masks. The hidden test score is the judge.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kagglesalt.competition import metric
from kagglesalt.competition.postprocess import PostProcess
from kagglesalt.errors import KaggleSaltError, option
from kagglesalt.workspace import Workspace, resolve, runs, submissions

MARGIN = 0.3  # how far from the threshold a probability must be to count as sure


@dataclass(frozen=True)
class PseudoLabels:
    """The chosen test images, their masks, and what `config.json` records of them."""

    images: np.ndarray  # uint8 (N, 101, 101)
    masks: np.ndarray  # bool (N, 101, 101)
    source: str  # "run NAME" or "ensemble NAME"
    confidence: float
    of: int  # test images the source predicted

    def record(self) -> dict[str, object]:
        h = hashlib.sha256(self.images.tobytes())
        h.update(np.packbits(self.masks).tobytes())
        return {"source": self.source, "confidence": self.confidence,
                "images": int(len(self.images)), "of": self.of,
                "salty": int(self.masks.reshape(len(self.masks), -1).any(axis=1).sum()),
                "fingerprint": h.hexdigest()[:16]}


def confident(levels: np.ndarray, threshold: float, confidence: float) -> np.ndarray:
    """Which images (uint8 levels, N x 101 x 101) have at least `confidence` of their
    pixels at least `MARGIN` from `threshold`."""
    margin = round(MARGIN * 255)
    cut = round(threshold * 255)
    flat = levels.reshape(len(levels), -1).astype(np.int16)
    sure = np.abs(flat - cut) >= margin
    return sure.mean(axis=1) >= confidence


def select(ws: Workspace, source: str, confidence: float, test_ids: list[str],
           test_images: np.ndarray, train_fingerprint: str, run_name: str) -> PseudoLabels:
    """The pseudo-labels of `source` (a run or ensemble name, as `resolve` reads it) for the
    run `run_name` about to train on data whose training fingerprint is
    `train_fingerprint` and whose test images are `test_images` (ids `test_ids`)."""
    if not 0.5 <= confidence <= 1:
        raise KaggleSaltError(f"{option('pseudo_confidence', confidence)}: give the share of "
                              "sure pixels an image needs, from 0.5 to 1")
    target = resolve(ws, source)
    if target.kind == "run":
        members, weights = [runs.Run(target.path)], [1.0]
        run = members[0]
        run.require_finished()
        threshold, rule = run.threshold, run.postprocess()
        described = f"run {target.name}"
    else:
        record = submissions.require_ensemble(target.path)
        members = [runs.open_run(ws.runs_dir, name) for name in record.weights]
        weights = list(record.weights.values())
        threshold, rule = record.threshold, PostProcess(**record.postprocess)
        described = f"ensemble {target.name}"
    for member in members:
        if member.name == run_name:
            raise KaggleSaltError(f"{described} is made of run {run_name} itself: its own "
                                  "test predictions would train it; give another source")
        member.require_finished()
        if member.config.data.fingerprint != train_fingerprint or member.test_ids() != \
                list(test_ids):
            raise KaggleSaltError(f"{described} was made from other data than "
                                  f"{Path(ws.data_dir)} holds: its pseudo-labels would not "
                                  "be of these test images; give a source trained on them")
    levels = metric.combine([member.require_test() for member in members], weights)
    keep = confident(levels, threshold, confidence)
    if not keep.any():
        raise KaggleSaltError(f"no test image of {described} has {confidence:.0%} of its "
                              "pixels sure: lower "
                              f"{option('pseudo_confidence', confidence)}, or give a "
                              "better-trained source")
    masks = rule(metric.binarize(levels[keep], threshold))
    return PseudoLabels(np.asarray(test_images)[keep], masks, described, confidence,
                        len(levels))
