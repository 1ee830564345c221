"""The `kagglesalt` command line: thin commands that parse, call the library and print."""

from __future__ import annotations

from pathlib import Path

import click

from kagglesalt import __version__
from kagglesalt.console import console, counting
from kagglesalt.errors import KaggleSaltError
from kagglesalt.kaggle import COMPETITION
from kagglesalt.plugins import PLUGINS_DIR_ENV
from kagglesalt.workspace import Workspace


class KaggleSaltGroup(click.Group):
    """Turns a KaggleSaltError or an OSError into one line and exit status 1, and Ctrl-C into
    status 130."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KaggleSaltError as e:
            raise click.ClickException(str(e)) from None
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
    return sorted(p.name for p in folder.iterdir()
                  if (p / "config.json").exists() and p.name.startswith(incomplete))


def complete_runs_and_ensembles(ctx: click.Context, param: click.Parameter,
                                incomplete: str) -> list[str]:
    """Shell completion: run names, and the names of ensemble submissions."""
    folder = _root_folder(ctx, "submissions_dir", "KAGGLESALT_SUBMISSIONS_DIR",
                          "submissions")
    ensembles = [p.stem for p in folder.glob("*.json") if p.with_suffix(".csv").exists()
                 and p.stem.startswith(incomplete)] if folder.is_dir() else []
    return complete_runs(ctx, param, incomplete) + sorted(ensembles)


def complete_models(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion: the registered model names."""
    from kagglesalt import plugins

    return sorted(name for name in plugins.models(ctx.params.get("plugins_dir"))
                  if name.startswith(incomplete))


plugins_dir_option = click.option(
    "--plugins-dir", type=click.Path(file_okay=False), envvar=PLUGINS_DIR_ENV,
    help=f"Folder of workspace plugin .py files [env {PLUGINS_DIR_ENV}].")


@cli.command()
@click.option("--train", "n_train", default=4000, show_default=True, help="Training images.")
@click.option("--test", "n_test", default=1000, show_default=True, help="Test images.")
@click.option("--seed", default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing data set.")
@click.pass_obj
def synth(ws: Workspace, n_train: int, n_test: int, seed: int, force: bool) -> None:
    """Write a synthetic seismic data set in the Kaggle layout into the data folder."""
    from kagglesalt import synth as synthetic

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
    from kagglesalt import submission as submissions

    value, n = submissions.score_files(submission, truth or ws.data_dir / "train.csv")
    console.print(f"{value:.6f}  competition score over {n} images")


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


def _key_values(pairs: tuple[str, ...], option: str) -> dict[str, object]:
    from kagglesalt import settings

    try:
        return settings.key_values(pairs)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=option) from None


@cli.command()
@click.argument("name", required=False, shell_complete=complete_models)
@plugins_dir_option
def models(name: str | None, plugins_dir: str | None) -> None:
    """List the registered models, or show model NAME: its training defaults, parameters
    and where it comes from."""
    from rich.markup import escape
    from rich.table import Table

    from kagglesalt import plugins

    if name:
        _show_model(plugins.get_model(name, plugins_dir))
        return
    found = plugins.models(plugins_dir)
    table = Table("model", "from", "parameters", "description")
    for model, spec in sorted(found.items()):
        params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
        table.add_row(model, spec.source, escape(params), escape(spec.description))
    console.print(table)
    console.print("`kagglesalt models NAME` shows a model's training defaults")
    for plugin, reason in plugins.broken().items():
        console.print(f"[red]plugin {plugin} is broken and was skipped:[/red] "
                      f"{escape(reason)}", soft_wrap=True)


def _show_model(spec) -> None:
    import json

    from rich.markup import escape
    from rich.table import Table

    from kagglesalt import settings
    from kagglesalt.backend import import_keras

    import_keras()
    chosen = spec.training_settings()
    try:
        count = f"{spec.build(input_size=chosen.input_size, **chosen.params).count_params():,}"
    except Exception as e:  # shown, not fatal: the defaults are still worth reading
        count = f"cannot build: {type(e).__name__}: {e}"
    console.print(f"[bold]{escape(spec.name)}[/bold] ({escape(spec.source)}): "
                  f"{escape(spec.description)}; {count} weights at its defaults")
    table = Table("setting", "cv option", "model default", "declared default",
                  title="training defaults")
    for f in settings.FIELDS.values():
        if f.name == "params":
            continue
        value = getattr(chosen, f.name)
        declared = settings.default(f.name)
        table.add_row(f.name, settings.flag(f) or "(model only)",
                      escape(json.dumps(value)),
                      "" if value == declared else escape(json.dumps(declared)))
    console.print(table)
    params = Table("parameter (--param)", "default", title="model parameters")
    for key, value in spec.params.items():
        params.add_row(key, escape(json.dumps(value)))
    console.print(params)


def _setting_options(command):
    """The cv options of the training settings, derived from their one declaration."""
    from kagglesalt import settings

    for f in reversed(list(settings.FIELDS.values())):
        flag = settings.flag(f)
        if flag is None:  # set by the model only
            continue
        meta = f.metadata
        help_text = f"{meta['help'][0].upper()}{meta['help'][1:]} [model default]."
        if f.type is dict:
            option = click.option(flag, f.name, multiple=True, metavar=meta["metavar"],
                                  help=help_text)
        elif meta["choices"]:
            option = click.option(flag, f.name, type=click.Choice(meta["choices"]),
                                  help=help_text)
        elif f.type is int:
            kind = click.INT if meta["minimum"] is None else click.IntRange(min=meta["minimum"])
            option = click.option(flag, f.name, type=kind, help=help_text)
        else:
            lowest = meta["above"] if meta["above"] is not None else meta["minimum"]
            option = click.option(flag, f.name, help=help_text, type=click.FloatRange(
                min=lowest, max=meta["maximum"], min_open=meta["above"] is not None))
        command = option(command)
    return command


@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="An experiment file (TOML): the model, folds, budget and any setting; "
                   "options given here override it.")
@click.option("--from", "from_run", metavar="RUN", shell_complete=complete_runs,
              help="Start from RUN's model, folds and settings (into a new run); options "
                   "and --set given here override them.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Any setting by name (params.NAME, augment.NAME for one entry), over "
                   "--config or --from.")
@click.option("--model", "-m", default="unet", show_default=True, help="A registered model.",
              shell_complete=complete_models)
@click.option("--folds", "-k", default=5, show_default=True, type=click.IntRange(min=2),
              help="Number of folds.")
@click.option("--name", help="Run name [MODEL-kFOLDS-sSEED; with --from, RUN-TIMESTAMP]; "
                             "rerunning resumes it.")
@plugins_dir_option
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              metavar="[ADDRESS]",
              help="Train folds in parallel on Ray: alone, a local instance; 'auto' or "
                   "ray://host:port joins a cluster (pip install 'kagglesalt[ray]').")
@click.option("--cpus-per-fold", default=1.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="With --ray: CPUs a fold takes.")
@click.option("--gpus-per-fold", type=click.FloatRange(min=0),
              help="With --ray: GPUs a fold takes, 0.5 to share one [1 where the cluster has "
                   "GPUs, else 0].")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True),
              help="Time budget of the whole run (with --ray too): the epochs are chosen to "
                   "fit it on this machine and re-planned as the folds go. Not with --epochs.")
@_setting_options
@click.pass_context
def cv(ctx: click.Context, config_file: Path | None, from_run: str | None,
       sets: tuple[str, ...], model: str, folds: int, name: str | None,
       plugins_dir: str | None, ray_address: str | None, cpus_per_fold: float,
       gpus_per_fold: float | None, minutes: float | None, **given) -> None:
    """Stratified K-fold training with OOF scores, threshold search and TTA test predictions."""
    from click.core import ParameterSource

    from kagglesalt import experiments, runs, timestamps

    ws: Workspace = ctx.obj
    if ray_address is None and (gpus_per_fold is not None or ctx.get_parameter_source(
            "cpus_per_fold") is not ParameterSource.DEFAULT):
        raise click.UsageError("--gpus-per-fold and --cpus-per-fold apply to folds on Ray: "
                               "add --ray, or leave them out")
    if config_file and from_run:
        raise click.UsageError("--config and --from together: give one")
    base = experiments.read(config_file) if config_file else \
        experiments.from_run(runs.open_run(ws.runs_dir, from_run)) if from_run else {}
    for key in ("params", "augment"):
        given[key] = _key_values(given[key], f"--{'param' if key == 'params' else key}") \
            if given[key] else None
    explicit = {k: v for k, v in given.items() if v is not None}
    for option, value in (("model", model), ("folds", folds), ("name", name),
                          ("plugins_dir", plugins_dir), ("minutes", minutes)):
        if ctx.get_parameter_source(option) is not ParameterSource.DEFAULT and \
                value is not None:
            explicit[option] = value
    if explicit.get("minutes") is not None and explicit.get("epochs") is not None:
        raise click.UsageError("--epochs and --minutes together: give one (--minutes "
                               "chooses the epochs that fit the budget on this machine)")
    values = experiments.merge(base, _key_values(sets, "--set"), explicit)
    if from_run and "name" not in values:
        values["name"] = f"{from_run}-{timestamps.for_name()}"
    crossval = _crossval()
    chosen = {k: v for k, v in values.items() if k in crossval.settings.FIELDS}
    _train_and_report(ws, crossval.CVOptions(
        values.get("model", model), values.get("folds", folds), values.get("name"),
        values.get("plugins_dir"), chosen, ray_address, cpus_per_fold, gpus_per_fold,
        values.get("minutes")))


def _crossval():
    """The cv module, imported after Keras has been imported without TensorFlow's chatter."""
    from kagglesalt.backend import import_keras

    import_keras()
    from kagglesalt import cv

    return cv


def _train_and_report(ws: Workspace, options) -> None:
    from kagglesalt.console import RichReporter

    reporter = RichReporter()
    try:
        run = _crossval().run_cv(ws, options, reporter)
    finally:
        reporter.close()
    _print_scores(run)


def _print_scores(run) -> None:
    for k in range(run.n_folds):
        fold = run.fold_summary(k)
        console.print(f"fold {k + 1}: {fold.score:.4f} (threshold {fold.threshold:.2f}, "
                      f"best epoch {fold.best_epoch}, {fold.models} model(s))")
    console.print(f"[bold]OOF score {run.oof_score:.4f}[/bold] at threshold "
                  f"{run.threshold:.2f}; run folder {run.path}")


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
                                        threshold, post)
    _print_ensemble(result)
    return result.path


def _print_ensemble(result) -> None:
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
@click.option("--minutes", default=5.0, show_default=True, type=click.FloatRange(min=1),
              help="Time budget of the whole demo; its data and epochs are fitted to it.")
@click.pass_obj
def demo(ws: Workspace, minutes: float) -> None:
    """The whole workflow on a CPU within a time budget: data, CV of the classic U-Net, a
    submission, and its score on test images the models never saw.

    Uses the data folder if it holds competition data, else generates the embedded
    default, a synthetic set sized to the budget.
    """
    from kagglesalt.console import RichReporter

    _crossval()  # Keras, imported quietly
    from kagglesalt import demo as demos

    reporter = RichReporter()
    try:
        result = demos.run_demo(ws, minutes, reporter)
    finally:
        reporter.close()
    _print_ensemble(result.ensemble)
    from kagglesalt import runs

    _print_scores(runs.open_run(ws.runs_dir, result.run_name))
    console.print(f"Demo done in {result.seconds / 60:.1f} minutes ({result.plan.train} "
                  f"training images, {result.plan.epochs} epochs per fold).")
    if result.test_score is not None:
        console.print(f"[bold]Test score {result.test_score:.4f}[/bold] on the "
                      f"{result.plan.test} synthetic test images the models never saw.")
    console.print(f"Next: `{pasteable('report', result.run_name)}` shows where the model "
                  f"fails; with Kaggle credentials, `{pasteable('download')}`, "
                  f"`{pasteable('cv', '--model', 'unet_lite', '--folds', '3', '--minutes', '45')}`"
                  f" (or unet_deep on a GPU) and `{pasteable('submit', '-m', 'first')}` make a "
                  f"real submission ({result.submission.name} is synthetic, and submit refuses "
                  "it).", soft_wrap=True)


@cli.command()
@click.argument("run", required=False, shell_complete=complete_runs)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV to write [RUN folder/oof.csv].")
@click.pass_obj
def oof(ws: Workspace, run: str | None, output: Path | None) -> None:
    """Write RUN's out-of-fold masks (at its OOF threshold) as a submission-format CSV."""
    from kagglesalt import runs

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

    from kagglesalt import runs

    found = runs.all_runs(ws.runs_dir)
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
            state = "done" if run.finished else f"{run.folds_done()}/{run.n_folds}"
            row = [config.model, f"{run.n_folds}×{config.settings.get('epochs', '')}",
                   f"{run.oof_score:.4f}" if run.finished else "", state,
                   config.created[5:16].replace("T", " ")]
        except KaggleSaltError as e:  # a damaged run is marked; the others are listed
            row = ["", "", "", "[red]damaged[/red]", ""]
            damaged.append(str(e))
        table.add_row(escape(run.name), *row)
    console.print(table)
    for line in damaged:
        console.print(escape(line), soft_wrap=True)


@runs_command.command("compare")
@click.argument("names", nargs=-1, required=True, shell_complete=complete_runs)
@click.pass_obj
def runs_compare(ws: Workspace, names: tuple[str, ...]) -> None:
    """Compare two or more runs: the settings that differ, fold and OOF scores."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from kagglesalt import runs

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
    from kagglesalt import runs

    console.print(f"Deleted {runs.remove(ws.runs_dir, name, ws.submissions_dir, force)}")


@runs_command.command("mv")
@click.argument("old", shell_complete=complete_runs)
@click.argument("new")
@click.option("--force", is_flag=True, help="Also a run that a submission was made with.")
@click.pass_obj
def runs_rename(ws: Workspace, old: str, new: str, force: bool) -> None:
    """Rename run OLD to NEW (refused while it trains)."""
    from kagglesalt import runs

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
    _crossval()  # Keras, imported quietly
    from kagglesalt import infer

    with console.status(f"Predicting with {run}"):
        ids, masks = infer.predict_files(ws, run, images, png_dir, csv, plugins_dir)
    salty = int(masks.reshape(len(masks), -1).any(axis=1).sum())
    where = " and ".join(str(p) for p in (png_dir, csv) if p is not None)
    console.print(f"{len(ids)} masks ({salty} with salt) written to {where}")


def _warn(text: str) -> None:
    from kagglesalt.console import err_console

    err_console.print(f"[yellow]{text}[/yellow]")


competition_option = click.option(
    "--competition", default=COMPETITION, show_default=True,
    envvar="KAGGLESALT_COMPETITION", help="Kaggle competition [env KAGGLESALT_COMPETITION].")


@cli.command()
@competition_option
@click.option("--force", is_flag=True, help="Download again even if the files are present.")
@click.pass_obj
def download(ws: Workspace, competition: str, force: bool) -> None:
    """Download the competition files into the data folder, unpacked in the Kaggle layout."""
    from kagglesalt import kaggle
    from kagglesalt.console import downloading

    with downloading(f"downloading {competition}") as update:
        outcome = kaggle.download(ws.data_dir, competition, force, update, _warn)
    console.print(outcome)


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-m", "--message", required=True, help="Description shown on Kaggle.")
@competition_option
@click.option("--force", is_flag=True, help="Submit a file that was already submitted.")
@click.pass_obj
def submit(ws: Workspace, file: Path | None, message: str, competition: str,
           force: bool) -> None:
    """Validate FILE (default: the newest in the submissions folder) and upload it."""
    from kagglesalt import upload

    path, ref = upload.submit(ws, file, message, force, competition, _warn)
    console.print(f"Submitted {path.name} to {competition} (Kaggle ref {ref}); "
                  "`kagglesalt submissions` shows its score when Kaggle has one")


@cli.command()
@competition_option
@click.pass_obj
def submissions(ws: Workspace, competition: str) -> None:
    """Your submissions on Kaggle with their scores (written into the ledger too)."""
    from rich.table import Table

    from kagglesalt import upload

    rows = upload.refresh(ws, competition, _warn)
    table = Table("date", "file", "description", "status", "public", "private",
                  title=competition)
    for row in rows:
        table.add_row(str(row["date"] or "")[:19], row["file"], row["description"],
                      row["status"], str(row["public_score"]), str(row["private_score"]))
    console.print(table)


def main() -> None:
    from kagglesalt import plugins

    plugins.register_commands(cli)
    cli(prog_name="kagglesalt")
