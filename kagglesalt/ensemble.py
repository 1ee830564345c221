"""`kagglesalt ensemble`: runs into one validated submission, everything chosen on OOF.

Runs are combined by a weighted mean of their probabilities. Weights, the threshold and the
post-processing are all chosen on the out-of-fold predictions, which every run made for the
same images with the same folds; runs whose folds or data differ are refused, since then a
run's OOF prediction of an image may come from a model that trained on it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kagglesalt import data, timestamps
from kagglesalt.atomic import clean_leftovers
from kagglesalt.competition import metric, postprocess, rle, submission
from kagglesalt.errors import KaggleSaltError, option
from kagglesalt.workspace import Workspace, check_name, locks, runs, submissions

TEST_CHUNK = 1000  # test images combined at a time: keeps memory flat for 18,000


@dataclass(frozen=True)
class Member:
    name: str
    oof_score: float
    weight: float


@dataclass(frozen=True)
class EnsembleResult:
    path: Path
    members: list[Member]
    oof_score: float
    threshold: float
    threshold_score: float
    postprocess: postprocess.PostProcess
    chosen: str  # what OOF chose and what was given, in words
    empty_score: float | None = None  # what empty masks score on the training images

    def warning(self) -> str | None:
        return metric.below_empty(self.oof_score, self.empty_score)


def parse_postprocess(text: str) -> str | postprocess.PostProcess:
    """'auto' (chosen on OOF), 'none', or 'min_component=20,min_area=50'."""
    if text in ("auto", "none"):
        return text if text == "auto" else postprocess.PostProcess()
    values: dict[str, int] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("min_component", "min_area") \
                or not value.strip().isdigit():
            raise KaggleSaltError(f"{option('post', repr(text))}: give auto, none, or "
                                  "min_component=N,min_area=N (pixels)")
        values[key.strip()] = int(value)
    return postprocess.PostProcess(**values)


def check_compatible(members: Sequence[runs.Run]) -> None:
    """Refuse runs that did not use the same data and the same fold of every image."""
    first = members[0]
    reference = first.folds()
    for run in members[1:]:
        if run.config.data.fingerprint != first.config.data.fingerprint:
            raise KaggleSaltError(f"runs {first.name} and {run.name} were trained on different "
                                  "data: ensemble runs of the same data set only")
        other = run.folds()
        if len(other) != len(reference) or (other.values != reference.values).any():
            raise KaggleSaltError(f"runs {first.name} and {run.name} have different fold "
                                  "assignments, so their OOF predictions would leak: ensemble "
                                  f"runs made with the same {option('folds')} and {option('seed')}")


def _score(truth: np.ndarray, oofs: Sequence[np.ndarray], weights: Sequence[float]) -> float:
    return metric.threshold_curve(truth, metric.combine(oofs, weights)).score


def fit_weights(truth: np.ndarray, oofs: Sequence[np.ndarray]) -> list[float]:
    """Weights on the simplex that maximise the OOF score (grid for up to 3 runs, else
    coordinate ascent from equal weights)."""
    m = len(oofs)
    if m == 1:
        return [1.0]
    if m <= 3:
        grid = [w for w in itertools.product(range(11), repeat=m) if sum(w) == 10]
        candidates = [[x / 10 for x in w] for w in grid]
        return max(candidates, key=lambda w: _score(truth, oofs, w))
    weights = [1.0 / m] * m
    best = _score(truth, oofs, weights)
    for _ in range(2):
        for i in range(m):
            for value in np.linspace(0, 1, 6):
                trial = list(weights)
                trial[i] = value
                total = sum(trial)
                if total == 0:
                    continue
                trial = [t / total for t in trial]
                score = _score(truth, oofs, trial)
                if score > best + 1e-12:
                    best, weights = score, trial
    return weights


def run_ensemble(ws: Workspace, run_names: Sequence[str] = (),
                 weights: str | Sequence[float] = "auto", name: str | None = None,
                 threshold: float | None = None,
                 post: str | postprocess.PostProcess = "auto",
                 warn: Callable[[str], None] | None = None) -> EnsembleResult:
    """Combine runs into `submissions/<name>.csv` and its record. Weights, the threshold and
    the post-processing are chosen on OOF unless given. `warn` hears of a wait for another
    writer of the submissions folder."""
    if isinstance(post, str) and post != "auto":
        post = parse_postprocess(post)
    if threshold is not None and not 0 < threshold < 1:
        raise KaggleSaltError(f"{option('threshold', threshold)}: give a probability between 0 "
                              "and 1")
    if name is not None:
        check_name(name, "submission")
    members = [runs.open_run(ws.runs_dir, n) for n in run_names] or [runs.latest(ws.runs_dir)]
    for run in members:
        run.require_finished()
    check_compatible(members)
    path = Path(ws.submissions_dir) / f"{name or _default_name(members)}.csv"
    ledger = submissions.Ledger(ws.submissions_dir)
    if path.exists() and (ledger.read()["file"] == path.name).any():
        raise KaggleSaltError(f"{path} exists: choose another {option('name')}")
    train = data.load_train(ws.data_dir)
    members[0].check_data(train, ws.data_dir)
    test_ids = members[0].test_ids()
    if any(run.test_ids() != test_ids for run in members[1:]):
        raise KaggleSaltError("the runs predicted different test images: retrain them on "
                              "the same data folder")
    sample_ids = data.sample_submission_ids(ws.data_dir)
    if test_ids != sample_ids:
        raise KaggleSaltError(f"run {members[0].name} has no test predictions for the ids of "
                              f"{ws.data_dir / 'sample_submission.csv'}")

    oofs = [run.oof() for run in members]
    if isinstance(weights, str):
        if weights != "auto":
            raise KaggleSaltError(f"{option('weights', weights)}: give auto, or one number "
                                  "per run")
        chosen = fit_weights(train.truth, oofs)
    else:
        if len(weights) != len(members):
            raise KaggleSaltError(f"{option('weights')} has {len(weights)} values for "
                                  f"{len(members)} runs")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise KaggleSaltError(f"{option('weights')} must be non-negative and not all zero")
        chosen = [w / sum(weights) for w in weights]
    oof_levels = metric.combine(oofs, chosen)
    search = metric.threshold_curve(train.truth, oof_levels)
    cut = search.threshold if threshold is None else threshold
    binary = metric.binarize(oof_levels, cut)
    if isinstance(post, str):  # "auto"
        found = postprocess.search(train.truth, binary)
        rule, final_score = found.best, found.score
    else:
        rule = post
        final_score = metric.score(train.truth, rule(binary))
    given = [w for w, g in (("threshold", threshold is not None),
                            ("post-processing", post != "auto")) if g]

    tests = [run.require_test() for run in members]
    rles: list[str] = []
    for start in range(0, len(test_ids), TEST_CHUNK):
        levels = metric.combine(tests, chosen, slice(start, start + TEST_CHUNK))
        rles += rle.encode(rule(metric.binarize(levels, cut)))
    member_rows = [Member(r.name, r.scores.score, w)
                   for r, w in zip(members, chosen, strict=True)]
    threshold_score = metric.score(train.truth, binary)
    # The CSV, its record, then its ledger row, which marks the submission made: a CSV
    # without a row (an ensemble cut short) is made again by a rerun of the same name.
    with locks.holding(ws.submissions_dir, "the submissions folder", locks.SHORT_WAIT, warn):
        if (ledger.read()["file"] == path.name).any():
            raise KaggleSaltError(f"{path} exists: choose another {option('name')}")
        clean_leftovers(ws.submissions_dir)
        submission.write_rles(path, test_ids, rles)
        submissions.write_ensemble(path, submissions.EnsembleRecord(
            submission=path.name, members=[asdict(m) for m in member_rows],
            oof_score=final_score, threshold=cut, score_before_postprocess=threshold_score,
            postprocess=asdict(rule), created=timestamps.now(),
            curve={"thresholds": search.thresholds.tolist(),
                   "scores": search.scores.tolist()},
            data_source=data.source(ws.data_dir).get("source", "")))
        ledger.add(file=path.name, sha256=submissions.sha256(path), created=timestamps.now(),
                   source=" + ".join(f"{m.name}:{m.weight:.2f}" for m in member_rows),
                   oof_score=f"{final_score:.6f}")
    return EnsembleResult(path, member_rows, final_score, cut, threshold_score, rule,
                          f"{' and '.join(given)} given" if given else "all chosen on OOF",
                          metric.empty_score(train.truth))


def _default_name(members: Sequence[runs.Run]) -> str:
    stem = members[0].name if len(members) == 1 else f"ensemble{len(members)}"
    return f"{stem}-{timestamps.for_name()}"

