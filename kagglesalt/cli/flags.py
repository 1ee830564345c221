"""The library's messages name options in Python's words (`errors.option`); the command
line writes them as the flags of its commands: `folds=1` becomes `--folds 1`, `force=True`
becomes `--force`, the ensemble's `post` becomes `--postprocess`."""

from __future__ import annotations

import click

from kagglesalt.errors import FlagWriter, render, template_of


def _options(command: click.Command, found: dict[str, click.Option]) -> None:
    for param in command.params:
        if isinstance(param, click.Option):
            found.setdefault(param.name, param)
    for sub in getattr(command, "commands", {}).values():
        _options(sub, found)


def flag_writer(ctx: click.Context | None) -> FlagWriter:
    """Writes an option as a flag: of the command running in `ctx` (or, from the root's
    context, of the command it invoked) first, then of the global options and every other
    command, else as --the-name-with-dashes."""
    found: dict[str, click.Option] = {}
    if ctx is not None:
        root = ctx.find_root()
        running = ctx.command
        if ctx is root and ctx.invoked_subcommand and isinstance(running, click.Group):
            running = running.get_command(ctx, ctx.invoked_subcommand) or running
        _options(running, found)  # the command's own flag wins a name another one shares
        _options(root.command, found)

    def write(name: str, value: str | None) -> str:
        param = found.get(name)
        flag = max(param.opts, key=len) if param else f"--{name.replace('_', '-')}"
        if value is None or (param is not None and param.is_flag):
            return flag
        return f"{flag} {value}"

    return write


def for_command_line(text: str, ctx: click.Context | None = None) -> str:
    """A library message (a `Message`, an error's template, or plain text) in the words of
    the command running in `ctx` (default: the current context)."""
    ctx = ctx or click.get_current_context(silent=True)
    return render(template_of(text), flag_writer(ctx))
