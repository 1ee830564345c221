"""Commands on the data folder: `synth` (the embedded synthetic data set) and `score`."""

from __future__ import annotations

from pathlib import Path

import click

from kagglesalt.cli.app import cli
from kagglesalt.cli.console import console, counting
from kagglesalt.workspace import Workspace


@cli.command()
@click.option("--train", "n_train", default=4000, show_default=True, help="Training images.")
@click.option("--test", "n_test", default=1000, show_default=True, help="Test images.")
@click.option("--seed", default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing data set.")
@click.pass_obj
def synth(ws: Workspace, n_train: int, n_test: int, seed: int, force: bool) -> None:
    """Write a synthetic seismic data set in the Kaggle layout into the data folder."""
    from kagglesalt.data import synth as synthetic

    synthetic.check_target(ws.data_dir, n_train, n_test, force)  # before the bar appears
    with counting("synthesising") as update:
        synthetic.generate(ws.data_dir, n_train, n_test, seed=seed, force=force,
                           progress=update)
    console.print(f"Wrote {n_train} training and {n_test} test images to {ws.data_dir}")


@cli.command()
@click.argument("submission", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--truth", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV of true masks (id,rle_mask) [default: the data folder's train.csv].")
@click.pass_obj
def score(ws: Workspace, submission: Path, truth: Path | None) -> None:
    """Score SUBMISSION against known masks with the competition metric."""
    from kagglesalt.competition import submission as submissions

    value, n = submissions.score_files(submission, truth or ws.data_dir / "train.csv")
    console.print(f"{value:.6f}  competition score over {n} images")


