"""Commands that talk to Kaggle: `download`, `submit`, `submissions`."""

from __future__ import annotations

from pathlib import Path

import click

from kagglesalt.cli.app import (
    cli,
    competition_option,
    warn,
)
from kagglesalt.cli.console import console
from kagglesalt.cli.flags import for_command_line
from kagglesalt.workspace import Workspace


@cli.command()
@competition_option
@click.option("--force", is_flag=True, help="Download again even if the files are present.")
@click.pass_obj
def download(ws: Workspace, competition: str, force: bool) -> None:
    """Download the competition files into the data folder, unpacked in the Kaggle layout."""
    from kagglesalt import kaggle
    from kagglesalt.cli.console import downloading

    with downloading(f"downloading {competition}") as update:
        outcome = kaggle.download(ws.data_dir, competition, force, update, warn)
    console.print(for_command_line(outcome))


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-m", "--message", required=True, help="Description shown on Kaggle.")
@competition_option
@click.option("--force", is_flag=True, help="Submit a file that was already submitted.")
@click.pass_obj
def submit(ws: Workspace, file: Path | None, message: str, competition: str,
           force: bool) -> None:
    """Validate FILE (default: the newest in the submissions folder) and upload it."""
    from kagglesalt.submit import submit_file

    path, ref = submit_file(ws, file, message, force, competition, warn)
    console.print(f"Submitted {path.name} to {competition} (Kaggle ref {ref}); "
                  "`kagglesalt submissions` shows its score when Kaggle has one")


@cli.command()
@competition_option
@click.pass_obj
def submissions(ws: Workspace, competition: str) -> None:
    """Your submissions on Kaggle with their scores (written into the ledger too)."""
    from rich.table import Table

    from kagglesalt.submit import refresh

    rows = refresh(ws, competition, warn)
    table = Table("date", "file", "description", "status", "public", "private",
                  title=competition)
    for row in rows:
        table.add_row(str(row["date"] or "")[:19], row["file"], row["description"],
                      row["status"], str(row["public_score"]), str(row["private_score"]))
    console.print(table)


