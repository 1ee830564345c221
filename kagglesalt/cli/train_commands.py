"""Commands that train: `models` (what can be trained), `cv` and `demo`."""

from __future__ import annotations

from pathlib import Path

import click

from kagglesalt.cli.app import (
    cli,
    complete_models,
    complete_runs,
    complete_runs_and_ensembles,
    import_cv,
    pasteable,
    plugins_dir_option,
    print_ensemble,
    print_scores,
)
from kagglesalt.cli.console import console
from kagglesalt.cli.flags import for_command_line
from kagglesalt.workspace import Workspace


def _key_values(pairs: tuple[str, ...], option: str) -> dict[str, object]:
    from kagglesalt.model import settings

    try:
        return settings.key_values(pairs)
    except ValueError as e:
        raise click.BadParameter(f"{for_command_line(str(e))}: give {option} key=value",
                                 param_hint=option) from None


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

    from kagglesalt.model import settings
    from kagglesalt.model.backend import import_keras

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
    from kagglesalt.model import settings

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
@click.option("--pseudo", metavar="SOURCE", shell_complete=complete_runs_and_ensembles,
              help="Pseudo-labels: a finished run or ensemble of this data whose confident "
                   "test predictions train every fold as extra images (never scored).")
@click.option("--pseudo-confidence", type=click.FloatRange(0.5, 1.0), default=0.97,
              show_default=True,
              help="With --pseudo: the share of an image's pixels that must be sure (at "
                   "least 0.3 from the source's threshold) for it to train.")
@click.option("--on-kaggle", is_flag=True,
              help="Train in a Kaggle kernel on Kaggle's GPUs (your account's weekly quota): "
                   "push it, follow it, bring the run home; rerun to follow it again.")
@click.option("--kaggle-machine", default="NvidiaTeslaT4", show_default=True,
              help="With --on-kaggle: the kernel's GPU machine.")
@_setting_options
@click.pass_context
def cv(ctx: click.Context, config_file: Path | None, from_run: str | None,
       sets: tuple[str, ...], model: str, folds: int, name: str | None,
       plugins_dir: str | None, ray_address: str | None, cpus_per_fold: float,
       gpus_per_fold: float | None, minutes: float | None, pseudo: str | None,
       pseudo_confidence: float, on_kaggle: bool, kaggle_machine: str, **given) -> None:
    """Stratified K-fold training with OOF scores, threshold search and TTA test predictions."""
    from click.core import ParameterSource

    from kagglesalt import timestamps
    from kagglesalt.model import experiments
    from kagglesalt.workspace import runs

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
    if not on_kaggle and ctx.get_parameter_source("kaggle_machine") is not \
            ParameterSource.DEFAULT:
        raise click.UsageError("--kaggle-machine applies to a run on Kaggle: add --on-kaggle")
    crossval = import_cv()
    chosen = {k: v for k, v in values.items() if k in crossval.settings.FIELDS}
    options = crossval.CVOptions(
        values.get("model", model), values.get("folds", folds), values.get("name"),
        values.get("plugins_dir"), chosen, ray_address, cpus_per_fold, gpus_per_fold,
        values.get("minutes"), pseudo=pseudo, pseudo_confidence=pseudo_confidence)
    if on_kaggle:
        _train_on_kaggle(ws, options, kaggle_machine)
    else:
        _train_and_report(ws, options)


def _train_on_kaggle(ws: Workspace, options, machine: str) -> None:
    from kagglesalt import kernels
    from kagglesalt.cli.console import RichReporter

    reporter = RichReporter()
    try:
        run = kernels.run_on_kaggle(ws, options, machine, reporter)
    finally:
        reporter.close()
    print_scores(run)


def _train_and_report(ws: Workspace, options) -> None:
    from kagglesalt.cli.console import RichReporter

    reporter = RichReporter()
    try:
        run = import_cv().run_cv(ws, options, reporter)
    finally:
        reporter.close()
    print_scores(run)


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
    from kagglesalt.cli.console import RichReporter

    import_cv()  # Keras, imported quietly
    from kagglesalt import demo as demos

    reporter = RichReporter()
    try:
        result = demos.run_demo(ws, minutes, reporter)
    finally:
        reporter.close()
    print_ensemble(result.ensemble)
    from kagglesalt.workspace import runs

    print_scores(runs.open_run(ws.runs_dir, result.run_name))
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


