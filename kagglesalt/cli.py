"""The `kagglesalt` command line: thin commands that parse, call the library and print."""

from __future__ import annotations

from pathlib import Path

import click

from kagglesalt import __version__
from kagglesalt.console import console, counting
from kagglesalt.errors import KaggleSaltError
from kagglesalt.workspace import Workspace


class KaggleSaltGroup(click.Group):
    """Turns a KaggleSaltError into one line and exit status 1, and Ctrl-C into status 130."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KaggleSaltError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted: finished work is kept; rerun the command to resume.",
                       err=True)
            ctx.exit(130)


@click.group(cls=KaggleSaltGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kagglesalt")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              default="data", show_default=True, envvar="KAGGLESALT_DATA_DIR",
              help="Competition files in the Kaggle layout [env KAGGLESALT_DATA_DIR].")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path),
              default="runs", show_default=True, envvar="KAGGLESALT_RUNS_DIR",
              help="Where cv runs are written [env KAGGLESALT_RUNS_DIR].")
@click.option("--submissions-dir", type=click.Path(file_okay=False, path_type=Path),
              default="submissions", show_default=True, envvar="KAGGLESALT_SUBMISSIONS_DIR",
              help="Submission CSVs and their ledger [env KAGGLESALT_SUBMISSIONS_DIR].")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path, runs_dir: Path, submissions_dir: Path) -> None:
    """Train, ensemble and submit models for the Kaggle TGS Salt Identification Challenge."""
    ctx.obj = Workspace(data_dir, runs_dir, submissions_dir)


@cli.command()
@click.option("--train", "n_train", default=4000, show_default=True, help="Training images.")
@click.option("--test", "n_test", default=1000, show_default=True, help="Test images.")
@click.option("--seed", default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing data set.")
@click.pass_obj
def synth(ws: Workspace, n_train: int, n_test: int, seed: int, force: bool) -> None:
    """Write a synthetic seismic data set in the Kaggle layout into the data folder."""
    from kagglesalt import synth as synthetic

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
    from kagglesalt import submission as submissions

    value, n = submissions.score_files(submission, truth or ws.data_dir / "train.csv")
    console.print(f"{value:.6f}  competition score over {n} images")


def main() -> None:
    cli(prog_name="kagglesalt")
