"""Commands on what training made: `ensemble`, `oof`, `report`, `runs`, `predict`."""

from __future__ import annotations

from pathlib import Path

import click

from kagglesalt.cli.app import (
    cli,
    complete_runs,
    complete_runs_and_ensembles,
    import_cv,
    pasteable,
    plugins_dir_option,
    print_ensemble,
    say_what_a_name_names,
    warn,
)
from kagglesalt.cli.console import console
from kagglesalt.cli.flags import for_command_line
from kagglesalt.errors import KaggleSaltError
from kagglesalt.workspace import Workspace


def _parse_weights(text: str) -> str | list[float]:
    if text == "auto":
        return "auto"
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"'{text}' is neither 'auto' nor numbers like 0.6,0.4",
                                 param_hint="--weights") from None


def _make_submission(ws: Workspace, run_names: tuple[str, ...], weights: str,
                     name: str | None, threshold: float | None = None,
                     post: str = "auto") -> Path:
    from kagglesalt import ensemble as ensembles

    with console.status("Choosing weights, threshold and post-processing on OOF, then "
                        "writing the submission"):
        result = ensembles.run_ensemble(ws, run_names, _parse_weights(weights), name,
                                        threshold, post, warn)
    print_ensemble(result)
    return result.path


@cli.command()
@click.argument("runs", nargs=-1, shell_complete=complete_runs)
@click.option("--weights", default="auto", show_default=True,
              help="'auto' (fitted on OOF) or one weight per run, e.g. 0.6,0.4.")
@click.option("--name", help="Submission name [RUN-TIMESTAMP].")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Salt probability threshold [chosen on OOF].")
@click.option("--postprocess", "post", default="auto", show_default=True,
              metavar="auto|none|min_component=N,min_area=N",
              help="Drop components and masks under these sizes in pixels; auto: chosen on "
                   "OOF.")
@click.pass_obj
def ensemble(ws: Workspace, runs: tuple[str, ...], weights: str, name: str | None,
             threshold: float | None, post: str) -> None:
    """Combine RUNS (default: the latest) into a submission CSV, tuned on OOF."""
    _make_submission(ws, runs, weights, name, threshold, post)


@cli.command()
@click.argument("run", required=False, shell_complete=complete_runs)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV to write [RUN folder/oof.csv].")
@click.pass_obj
def oof(ws: Workspace, run: str | None, output: Path | None) -> None:
    """Write RUN's out-of-fold masks (at its OOF threshold) as a submission-format CSV."""
    from kagglesalt.workspace import runs

    chosen = runs.open_run(ws.runs_dir, run) if run else runs.latest(ws.runs_dir)
    chosen.require_finished()
    path = chosen.write_oof_csv(output)
    console.print(f"Wrote {path} (threshold {chosen.threshold:.2f}); "
                  f"`{pasteable('score', path)}` scores it against train.csv", soft_wrap=True)


@cli.command()
@click.argument("run", required=False, shell_complete=complete_runs_and_ensembles)
@click.pass_obj
def report(ws: Workspace, run: str | None) -> None:
    """Write an HTML report of RUN or an ensemble (default: the newest) and print its path."""
    from kagglesalt import report as reports

    say_what_a_name_names(ws, run)
    console.print(str(reports.build(ws, run)))


class RunsGroup(click.Group):
    """`kagglesalt runs` lists, `runs A B ...` compares, `runs rm` and `runs mv` manage."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["compare", *args]
        return super().parse_args(ctx, args)


@cli.group("runs", cls=RunsGroup, invoke_without_command=True)
@click.pass_context
def runs_command(ctx: click.Context) -> None:
    """List the runs, newest first; `runs A B ...` compares runs side by side; `runs rm` and
    `runs mv` delete and rename one."""
    if ctx.invoked_subcommand is None:
        _list_runs(ctx.obj)


def _list_runs(ws: Workspace) -> None:
    from rich.markup import escape
    from rich.table import Table

    from kagglesalt.workspace import runs

    found = runs.all_runs(ws.runs_dir)
    away = _list_away(ws)
    if not found:
        console.print(f"No runs in {ws.runs_dir}: `kagglesalt cv` trains one")
        return
    from rich import box

    table = Table(title=str(ws.runs_dir), box=box.SIMPLE_HEAD, pad_edge=False)
    # The name is what every other command needs: never wrapped or cut; nor are numbers.
    table.add_column("run", no_wrap=True, min_width=max(len(r.name) for r in found))
    for column in ("model", "k×epochs", "OOF", "state"):
        table.add_column(column, no_wrap=True)
    table.add_column("created", no_wrap=True, min_width=11)
    damaged = []
    for run in found:
        try:
            config = run.config
            state = "done" if run.finished else f"{run.folds_done()}/{run.n_folds}" + (
                " on Kaggle" if run.name in away else "")
            model = config.model + (" +pseudo" if config.pseudo else "")
            row = [model, f"{run.n_folds}×{_epochs(run, config)}",
                   f"{run.oof_score:.4f}" if run.finished else "", state,
                   config.created[5:16].replace("T", " ")]
        except KaggleSaltError as e:  # a damaged run is marked; the others are listed
            row = ["", "", "", "[red]damaged[/red]", ""]
            damaged.append(for_command_line(e.template))
        table.add_row(escape(run.name), *row)
    console.print(table)
    for line in damaged:
        console.print(escape(line), soft_wrap=True)


def _list_away(ws: Workspace) -> set[str]:
    """Says the runs pushed to Kaggle and not yet home (`cv --on-kaggle` detached, or cut
    short); returns their names."""
    from rich.markup import escape

    from kagglesalt import kernels

    away = kernels.away(ws.runs_dir)
    for name, record in away:
        state = f"ended {record.ended}" if record.ended else "not followed to its end"
        console.print(escape(f"On Kaggle: {name}, kernel {record.kernel} version "
                             f"{record.version} ({state}): `{pasteable('cv', '--name', name)} "
                             "--on-kaggle` brings it home"), soft_wrap=True)
    return {name for name, _ in away}


def _epochs(run, config) -> str:
    """The epochs the finished folds ran (a budget re-plans them as it goes, so they may
    differ from the first plan in config.json), else the plan's."""
    ran = [summary.epochs_run for k in range(run.n_folds)
           if (summary := run.fold_summary(k)) is not None]
    if not ran:
        return str(config.settings.get("epochs", ""))
    low, high = min(ran), max(ran)
    return str(low) if low == high else f"{low}-{high}"


@runs_command.command("compare")
@click.argument("names", nargs=-1, required=True, shell_complete=complete_runs)
@click.pass_obj
def runs_compare(ws: Workspace, names: tuple[str, ...]) -> None:
    """Compare two or more runs: the settings that differ, fold and OOF scores."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from kagglesalt.workspace import runs

    if len(names) == 1:
        raise click.UsageError("give no run to list them all, or two or more to compare")
    members = [runs.open_run(ws.runs_dir, n) for n in names]
    table = Table("", *(escape(r.name) for r in members), title="runs compared")
    for key, values in runs.differences(members).items():
        table.add_row(escape(key), *(escape(json.dumps(v)) for v in values))
    table.add_section()
    fold_scores = [r.fold_scores() for r in members]  # each fold's done.json, read once
    for k in range(max(r.n_folds for r in members)):
        table.add_row(f"fold {k + 1}", *(
            "" if k >= len(scores) or scores[k] is None else f"{scores[k]:.4f}"
            for scores in fold_scores))
    table.add_row("[bold]OOF[/bold]", *(f"{r.oof_score:.4f}" if r.finished else "unfinished"
                                        for r in members))
    console.print(table)


@runs_command.command("rm")
@click.argument("name", shell_complete=complete_runs)
@click.option("--force", is_flag=True, help="Also a run that a submission was made with.")
@click.pass_obj
def runs_remove(ws: Workspace, name: str, force: bool) -> None:
    """Delete run NAME (refused while it trains)."""
    from kagglesalt.workspace import runs

    console.print(f"Deleted {runs.remove(ws.runs_dir, name, ws.submissions_dir, force)}")


@runs_command.command("mv")
@click.argument("old", shell_complete=complete_runs)
@click.argument("new")
@click.option("--force", is_flag=True, help="Also a run that a submission was made with.")
@click.pass_obj
def runs_rename(ws: Workspace, old: str, new: str, force: bool) -> None:
    """Rename run OLD to NEW (refused while it trains)."""
    from kagglesalt.workspace import runs

    renamed = runs.rename(ws.runs_dir, old, new, ws.submissions_dir, force)
    console.print(f"Renamed {old} to {renamed.name}")


@cli.command()
@click.argument("run", shell_complete=complete_runs_and_ensembles)
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--png", "png_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the masks as PNGs (<image name>.png, 0/255).")
@click.option("--csv", type=click.Path(dir_okay=False, path_type=Path),
              help="The masks as a submission-format CSV (id = image name).")
@plugins_dir_option
@click.pass_obj
def predict(ws: Workspace, run: str, images: tuple[Path, ...], png_dir: Path | None,
            csv: Path | None, plugins_dir: str | None) -> None:
    """Salt masks for new 101x101 IMAGES (PNG files or folders) with RUN's fold models, flip
    TTA, threshold and post-processing; RUN may be an ensemble submission's name, whose
    runs, weights, threshold and post-processing predict then."""
    if png_dir is None and csv is None:
        raise click.UsageError("say where the masks go: --png FOLDER and/or --csv FILE")
    say_what_a_name_names(ws, run)
    import_cv()  # Keras, imported quietly
    from kagglesalt.predict import predict_files

    with console.status(f"Predicting with {run}"):
        ids, masks = predict_files(ws, run, images, png_dir, csv, plugins_dir)
    salty = int(masks.reshape(len(masks), -1).any(axis=1).sum())
    where = " and ".join(str(p) for p in (png_dir, csv) if p is not None)
    console.print(f"{len(ids)} masks ({salty} with salt) written to {where}")


