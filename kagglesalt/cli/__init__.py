"""The `kagglesalt` command line: thin click commands that parse, call the library and print.

`app` holds the command group, its global options and what the commands share; the commands
are grouped by what they work on, each module adding its commands to the group on import."""

# Imported for what importing does: each module adds its commands to the group.
from kagglesalt.cli import (  # noqa: F401
    data_commands,
    kaggle_commands,
    result_commands,
    train_commands,
)
from kagglesalt.cli.app import cli, main

__all__ = ["cli", "main"]
