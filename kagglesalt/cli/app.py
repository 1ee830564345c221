"""The `kagglesalt` command group: its global options, the error handling every command
shares, and what several commands use (shell completion, printed commands, the printing of
scores and ensembles)."""

from __future__ import annotations

from pathlib import Path

import click

from kagglesalt import __version__
from kagglesalt.cli.console import console
from kagglesalt.cli.flags import for_command_line
from kagglesalt.errors import Interrupted, KaggleSaltError
from kagglesalt.kaggle import COMPETITION
from kagglesalt.plugins import PLUGINS_DIR_ENV
from kagglesalt.workspace import Workspace


class KaggleSaltGroup(click.Group):
    """Turns a KaggleSaltError or an OSError into one line and exit status 1, and Ctrl-C into
    status 130."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Interrupted as e:
            click.echo(for_command_line(e.template, ctx), err=True)
            ctx.exit(130)
        except KaggleSaltError as e:
            raise click.ClickException(for_command_line(e.template, ctx)) from None
        except OSError as e:  # a full disk, a folder without write permission, ...
            where = f": {e.filename}" if e.filename else ""
            raise click.ClickException(f"{e.strerror or e}{where}") from None
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


def _root_folder(ctx: click.Context, name: str, env: str, default: str) -> Path:
    import os

    given = ctx.find_root().params.get(name)
    return Path(given or os.environ.get(env) or default)


def complete_runs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion: the run names in the runs folder."""
    folder = _root_folder(ctx, "runs_dir", "KAGGLESALT_RUNS_DIR", "runs")
    if not folder.is_dir():
        return []
    from kagglesalt.workspace import runs

    return sorted(run.name for run in runs.all_runs(folder) if run.name.startswith(incomplete))


def complete_runs_and_ensembles(ctx: click.Context, param: click.Parameter,
                                incomplete: str) -> list[str]:
    """Shell completion: run names, and the names of ensemble submissions."""
    folder = _root_folder(ctx, "submissions_dir", "KAGGLESALT_SUBMISSIONS_DIR",
                          "submissions")
    from kagglesalt.workspace import submissions

    ensembles = [p.stem for p in submissions.ensemble_records(folder)
                 if p.stem.startswith(incomplete)]
    return complete_runs(ctx, param, incomplete) + sorted(ensembles)


def complete_models(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion: the registered model names."""
    from kagglesalt import plugins

    return sorted(name for name in plugins.models(ctx.params.get("plugins_dir"))
                  if name.startswith(incomplete))


plugins_dir_option = click.option(
    "--plugins-dir", type=click.Path(file_okay=False), envvar=PLUGINS_DIR_ENV,
    help=f"Folder of workspace plugin .py files [env {PLUGINS_DIR_ENV}].")


def pasteable(*args: object) -> str:
    """A kagglesalt command line to print for the user: quoted for the shell, with the
    global options this command was given (a --data-dir left out would point elsewhere)."""
    import shlex

    from click.core import ParameterSource

    root = click.get_current_context().find_root()
    words = ["kagglesalt"]
    for name in ("data_dir", "runs_dir", "submissions_dir"):
        if root.get_parameter_source(name) is not ParameterSource.DEFAULT:
            words += [f"--{name.replace('_', '-')}", str(root.params[name])]
    return shlex.join([*words, *map(str, args)])


def import_cv():
    """The cv module, imported after Keras has been imported without TensorFlow's chatter."""
    from kagglesalt.model.backend import import_keras

    import_keras()
    from kagglesalt import cv

    return cv


def print_scores(run) -> None:
    """Each fold's score and the OOF score of a finished run."""
    for k in range(run.n_folds):
        fold = run.finished_fold(k)
        console.print(f"fold {k + 1}: {fold.score:.4f} (threshold {fold.threshold:.2f}, "
                      f"best epoch {fold.best_epoch}, {fold.models} model(s))")
    console.print(f"[bold]OOF score {run.oof_score:.4f}[/bold] at threshold "
                  f"{run.threshold:.2f}; run folder {run.path}")
    warning = run.scores.warning()
    if warning:
        warn(warning)


def print_ensemble(result) -> None:
    """The members, weights, threshold and post-processing of an ensemble just made."""
    from rich.table import Table

    table = Table("run", "OOF score", "weight", title="ensemble")
    for member in result.members:
        table.add_row(member.name, f"{member.oof_score:.4f}", f"{member.weight:.2f}")
    table.add_section()
    post = result.postprocess
    table.add_row("[bold]ensemble[/bold]", f"[bold]{result.oof_score:.4f}[/bold]", "")
    console.print(table)
    dropped = " and ".join(f"{what} under {size} px" for what, size in (
        ("components", post.min_component), ("masks", post.min_area)) if size)
    console.print(f"threshold {result.threshold:.2f} (OOF {result.threshold_score:.4f}), "
                  + (f"then drop {dropped} (OOF {result.oof_score:.4f})" if dropped else
                     "no post-processing") + f"; {result.chosen}")
    console.print(f"Wrote {result.path}")
    if result.warning():
        warn(result.warning())


def say_what_a_name_names(ws: Workspace, name: str | None) -> None:
    """A name that is both a run and an ensemble: say which one the command uses."""
    from kagglesalt.workspace import resolve

    note = resolve(ws, name).note if name else None
    if note:
        warn(note)


def warn(text: str) -> None:
    """A library warning, in the words of this command line."""
    from rich.markup import escape

    from kagglesalt.cli.console import err_console

    err_console.print(f"[yellow]{escape(for_command_line(text))}[/yellow]")


competition_option = click.option(
    "--competition", default=COMPETITION, show_default=True,
    envvar="KAGGLESALT_COMPETITION", help="Kaggle competition [env KAGGLESALT_COMPETITION].")


def main() -> None:
    from kagglesalt import plugins

    plugins.register_commands(cli)
    cli(prog_name="kagglesalt")
