"""`kagglesalt report`: one self-contained HTML page per run or ensemble.

Everything a competitor looks at to tune: configuration, fold and OOF scores, learning
curves, the threshold curve, where the model fails (by coverage class and depth, empty and
missed images) and a gallery of the worst and best out-of-fold predictions. Plots are PNGs
embedded as data URIs, so the page opens offline.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kagglesalt import data
from kagglesalt.atomic import clean_leftovers, write_text
from kagglesalt.competition import metric
from kagglesalt.competition.postprocess import PostProcess
from kagglesalt.data import folds
from kagglesalt.errors import KaggleSaltError
from kagglesalt.workspace import Workspace, resolve, runs, submissions

GALLERY = 12
DEPTH_BINS = 8


@dataclass
class Subject:
    """What a report is about: one run, or an ensemble of runs."""

    title: str
    out: Path
    config: dict[str, Any]
    scores: dict[str, Any]
    oof: np.ndarray  # uint8 levels, train order
    threshold: float
    members: list[dict[str, Any]]
    runs: list[runs.Run]
    postprocess: PostProcess = PostProcess()  # what turns the thresholded OOF into masks


def _figure_png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _run_subject(run: runs.Run) -> Subject:
    record = run.scores
    scores = {"oof": {"score": record.score, "threshold": record.threshold},
              "curve": record.curve,
              "folds": [dataclasses.asdict(run.finished_fold(k)) for k in range(run.n_folds)]}
    return Subject(f"run {run.name}", run.path / "report.html", run.config.to_json(), scores,
                   np.asarray(run.oof()), run.threshold, [], [run], run.postprocess())


def _ensemble_subject(ws: Workspace, record_path: Path) -> Subject:
    record = submissions.require_ensemble(record_path)
    members = [runs.open_run(ws.runs_dir, name) for name in record.weights]
    oof = metric.combine([r.oof() for r in members], list(record.weights.values()))
    config = {"ensemble": record.submission, "postprocess": record.postprocess,
              "members": record.weights, "data": record.data_source}
    scores = {"oof": {"score": record.oof_score, "threshold": record.threshold},
              "folds": [], "curve": record.curve}
    return Subject(f"ensemble {record_path.stem}", record_path.with_suffix(".html"),
                   config, scores, oof, record.threshold, record.members, members,
                   PostProcess(**record.postprocess))


def subject_for(ws: Workspace, name: str | None) -> Subject:
    """A run by name, an ensemble by submission name, else the newest of either."""
    ensembles = submissions.ensemble_records(ws.submissions_dir)
    if name:
        target = resolve(ws, name)
        if target.kind == "ensemble":
            return _ensemble_subject(ws, target.path)
        return _run_subject(runs.Run(target.path))
    finished = runs.finished_runs(ws.runs_dir)
    newest_run = finished[-1] if finished else None
    newest_ensemble = ensembles[-1] if ensembles else None
    if newest_run is None and newest_ensemble is None:
        raise KaggleSaltError(f"nothing to report: no finished run in {ws.runs_dir} and no "
                              f"ensemble in {ws.submissions_dir}")
    if newest_ensemble and (newest_run is None or newest_ensemble.stat().st_mtime >
                            newest_run.finished_at()):
        return _ensemble_subject(ws, newest_ensemble)
    assert newest_run is not None
    return _run_subject(newest_run)


def build(ws: Workspace, name: str | None = None) -> Path:
    """Write the report of a run or ensemble; return its path."""
    import matplotlib

    matplotlib.use("Agg")
    subject = subject_for(ws, name)
    train = data.load_train(ws.data_dir)
    subject.runs[0].check_data(train, ws.data_dir)
    raw = metric.binarize(subject.oof, subject.threshold)  # what the model says
    pred = subject.postprocess(raw)  # what a submission holds
    per_image = metric.image_scores(train.truth, pred)
    raw_per_image = metric.image_scores(train.truth, raw)
    post = subject.postprocess
    rule = " and ".join(f"{what} under {size} px" for what, size in (
        ("components", post.min_component), ("masks", post.min_area)) if size)
    headline = (f"OOF competition score <b>{raw_per_image.mean():.4f}</b> from the model at "
                f"threshold {subject.threshold:.2f}; "
                + (f"<b>{per_image.mean():.4f}</b> after the post-processing chosen on OOF "
                   f"(dropping {html.escape(rule)}), which the submission holds" if rule
                   else "no post-processing was chosen"))
    judged = " (after post-processing, as in the submission)" if rule else ""
    sections = [
        _section("Configuration", _config_table(subject.config)),
        _section("Scores", _scores_table(subject)),
        _learning_curves(subject),
        _section("Threshold", _img(_threshold_plot(subject, train.truth))),
        _section("Where it fails", _failure_tables(train, raw, pred, raw_per_image, per_image,
                                                   bool(rule)) +
                 _img(_breakdown_plot(train, per_image)) +
                 f"<p>Scores by coverage and depth are of the final masks{judged}.</p>"),
        _section(f"Worst out-of-fold predictions{judged}",
                 _img(_gallery(train, subject.oof, pred, per_image, worst=True))),
        _section(f"Best out-of-fold predictions of images with salt{judged}",
                 _img(_gallery(train, subject.oof, pred, per_image, worst=False))),
    ]
    page = _page(subject.title, headline, sections)
    # A report killed while writing left its temporary (pages run to megabytes).
    clean_leftovers(subject.out.parent, subject.out.name, older_than=600)
    write_text(subject.out, page)
    return subject.out


# ---------------------------------------------------------------------------- pieces


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def _img(encoded: str) -> str:
    return f'<figure><img alt="plot" src="data:image/png;base64,{encoded}"></figure>'


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _flatten(config: dict[str, Any], prefix: str = "") -> list[list[Any]]:
    rows = []
    for key, value in config.items():
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append([f"{prefix}{key}", value])
    return rows


def _config_table(config: dict[str, Any]) -> str:
    return _table(_flatten(config), ["setting", "value"])


def _scores_table(subject: Subject) -> str:
    oof = subject.scores["oof"]
    folds = subject.scores.get("folds", [])
    if folds:
        rows = [[f"fold {f['fold'] + 1}", f"{f['score']:.4f}", f"{f['threshold']:.2f}",
                 f.get("best_epoch", "")] for f in folds]
        rows.append(["OOF (all folds)", f"{oof['score']:.4f}", f"{oof['threshold']:.2f}", ""])
        out = _table(rows, ["", "competition score", "threshold", "best epoch"])
    else:  # an ensemble: its members' folds are in their own reports
        out = _table([["OOF", f"{oof['score']:.4f}", f"{oof['threshold']:.2f}"]],
                     ["", "competition score", "threshold"])
    if subject.members:
        best = max(m["oof_score"] for m in subject.members)
        members = [[m["name"], f"{m['oof_score']:.4f}", f"{m['weight']:.2f}"]
                   for m in subject.members]
        members.append(["ensemble", f"{oof['score']:.4f}",
                        f"gain {oof['score'] - best:+.4f} over the best member"])
        out += _table(members, ["member run", "OOF score", "weight"])
    return out


def stage_segments(history: pd.DataFrame) -> list[tuple[str, list[int], list[float]]]:
    """(stage, epochs, losses) of each loss stage of a fold's history, in order: the BCE +
    Dice and the Lovász losses are on other scales, so each is drawn as a line of its own."""
    stages = list(history["stage"]) if "stage" in history else ["loss"] * len(history)
    out = []
    for stage in dict.fromkeys(stages):
        part = history[[s == stage for s in stages]]
        out.append((str(stage), part["epoch"].tolist(), part["loss"].tolist()))
    return out


def _learning_curves(subject: Subject) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    parts = []
    for run in subject.runs:
        try:
            histories = run.histories()
        except KaggleSaltError as e:  # the rest of the report is still worth having
            parts.append(f"<p>{html.escape(str(e))}</p>")
            continue
        if not histories:
            continue
        fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(11, 3.6))
        for k, h in enumerate(histories):
            label = f"fold {k + 1}"
            color = f"C{k % 10}"
            # markers, so that a stage of one epoch still shows
            for number, (stage, epochs, loss) in enumerate(stage_segments(h)):
                ax_loss.plot(epochs, loss, color=color, marker=".",
                             linestyle="-" if number == 0 else "--",
                             label=f"{stage} (fold 1)" if k == 0 else None)
            scored = h.dropna(subset=["val_score"])  # runs may validate every few epochs
            ax_score.plot(scored["epoch"], scored["val_score"], color=color, marker=".",
                          label=label)
        ax_loss.set(title=f"{run.name}: training loss by stage", xlabel="epoch")
        ax_loss.legend(fontsize=8)
        ax_score.set(title="validation competition score", xlabel="epoch", ylim=(0, 1))
        for ax in (ax_loss, ax_score):  # epochs are whole numbers, also for short runs
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_score.legend(fontsize=8)
        parts.append(_img(_figure_png(fig)))
    return _section("Learning curves", "".join(parts) or "<p>No training history.</p>")


def _threshold_plot(subject: Subject, truth: np.ndarray) -> str:
    import matplotlib.pyplot as plt

    curve = subject.scores.get("curve")  # runs and ensembles store the curve they searched
    if not curve:
        search = metric.threshold_curve(truth, subject.oof)
        curve = {"thresholds": search.thresholds, "scores": search.scores}
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(curve["thresholds"], curve["scores"])
    ax.axvline(subject.threshold, color="crimson", linestyle="--",
               label=f"chosen {subject.threshold:.2f}")
    ax.set(xlabel="threshold", ylabel="OOF competition score",
           title="OOF score by threshold")
    ax.legend()
    return _figure_png(fig)


def _failure_tables(train: data.Split, raw: np.ndarray, pred: np.ndarray,
                    raw_per_image: np.ndarray, per_image: np.ndarray,
                    postprocessed: bool) -> str:
    """The failures of the model's masks and, beside them, of the post-processed ones: an
    image emptied by the post-processing is not a failure of the model."""
    n = len(train)
    truth_empty = ~train.truth.reshape(n, -1).any(axis=1)

    def counts(masks: np.ndarray, scores: np.ndarray) -> list[int]:
        empty = ~masks.reshape(n, -1).any(axis=1)
        return [int((truth_empty & ~empty).sum()), int((~truth_empty & empty).sum()),
                int((~truth_empty & ~empty & (scores == 0)).sum())]

    names = ["empty images with salt predicted", "salty images predicted empty",
             "salty images scoring 0 though predicted"]
    totals = [int(truth_empty.sum()), int((~truth_empty).sum()), int((~truth_empty).sum())]
    model = counts(raw, raw_per_image)
    if not postprocessed:
        return _table([[name, m, t] for name, m, t in zip(names, model, totals, strict=True)],
                      ["failure", "images", "out of"])
    final = counts(pred, per_image)
    return _table([[name, m, f, t] for name, m, f, t in zip(names, model, final, totals,
                                                             strict=True)],
                  ["failure", "the model", "after post-processing", "out of"])


def _breakdown_plot(train: data.Split, per_image: np.ndarray) -> str:
    import matplotlib.pyplot as plt

    classes = folds.coverage_class(train.coverage)
    labels = ["empty"] + [f"{10 * (c - 1)}-{10 * c}%" for c in range(1, 11)]
    fig, (ax_cov, ax_depth) = plt.subplots(1, 2, figsize=(12, 3.8))
    means = [per_image[classes == c].mean() if (classes == c).any() else np.nan
             for c in range(11)]
    counts = np.bincount(classes, minlength=11)
    ax_cov.bar(labels, means, color="steelblue")
    for x, (m, c) in enumerate(zip(means, counts, strict=True)):
        if c:
            ax_cov.text(x, (m if np.isfinite(m) else 0) + 0.02, str(c), ha="center",
                        fontsize=7)
    ax_cov.set(title="score by salt coverage (n above bars)", ylim=(0, 1.1))
    ax_cov.tick_params(axis="x", rotation=45, labelsize=8)
    depths = train.depths
    if not train.has_depths:
        ax_depth.text(0.5, 0.5, "no depths.csv: depths unknown", ha="center",
                      transform=ax_depth.transAxes)
    else:
        edges = np.nanquantile(depths, np.linspace(0, 1, DEPTH_BINS + 1))
        which = np.clip(np.searchsorted(edges, depths, side="right") - 1, 0, DEPTH_BINS - 1)
        scores = [per_image[which == b].mean() for b in range(DEPTH_BINS)]
        names = [f"{edges[b]:.0f}-{edges[b + 1]:.0f}" for b in range(DEPTH_BINS)]
        ax_depth.bar(names, scores, color="darkorange")
        ax_depth.tick_params(axis="x", rotation=45, labelsize=8)
    ax_depth.set(title="score by depth (equal-count bins)", ylim=(0, 1.1))
    return _figure_png(fig)


def _gallery(train: data.Split, oof: np.ndarray, pred: np.ndarray, per_image: np.ndarray,
             worst: bool) -> str:
    import matplotlib.pyplot as plt

    errors = (train.truth != pred).reshape(len(train), -1).sum(axis=1)
    order = np.lexsort((-errors, per_image)) if worst else np.lexsort((errors, -per_image))
    if not worst:  # an empty image scores 1.0 by predicting nothing: not worth showing
        salty = np.asarray(train.truth.reshape(len(train), -1).any(axis=1))
        order = order[salty[order]]
    chosen = order[:GALLERY]
    cols = 6
    rows = max(1, int(np.ceil(len(chosen) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), chosen, strict=False):
        rgb = np.repeat(train.images[i][..., None], 3, axis=2).astype(np.float32) / 255
        overlay = rgb.copy()
        overlay[pred[i] & ~train.truth[i]] = [1.0, 0.2, 0.2]  # false salt: red
        overlay[~pred[i] & train.truth[i]] = [0.2, 0.4, 1.0]  # missed salt: blue
        overlay[pred[i] & train.truth[i]] = [0.2, 0.9, 0.3]  # found salt: green
        ax.imshow(0.55 * rgb + 0.45 * overlay)
        ax.set_title(f"{train.ids[i]}\nscore {per_image[i]:.2f}, p̄ {oof[i].mean() / 255:.2f}",
                     fontsize=7)
    fig.suptitle("green: salt found, red: salt predicted where there is none, blue: missed",
                 fontsize=9)
    return _figure_png(fig)


def _page(title: str, headline: str, sections: list[str]) -> str:
    style = """
      body { font-family: system-ui, sans-serif; margin: 1.5em auto; width: 94vw;
             max-width: 1800px; color: #222; }
      h1 { margin-bottom: 0; } .score { font-size: 1.4em; color: #1565c0; }
      section { margin: 1.5em 0; } figure { margin: 0.5em 0; }
      img { max-width: 100%; border: 1px solid #eee; }
      table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
      td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
      th { background: #f4f6f8; }
    """
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>kagglesalt: {html.escape(title)}</title><style>{style}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>"
            f"<p class='score'>{headline}</p>"
            f"{''.join(sections)}</body></html>\n")
