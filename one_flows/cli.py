"""The `one-flows` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="one-flows",
    help="Register experiment sessions into Alyx or local ONE cache tables, and query them.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.callback()
def main() -> None:
    """Register experiment sessions into Alyx or local ONE cache tables, and query them."""


@app.command()
def sample(
    root: Annotated[Path, typer.Argument(help="Folder to write the sample sessions into.")],
    sessions_per_subject: Annotated[
        int, typer.Option(min=1, help="Days of recording per subject.")
    ] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the random contents.")] = 0,
) -> None:
    """Write a realistic sample tree of ALF sessions, each with a create_me.flag."""
    from one_flows.sample import make_sample_tree

    tree = make_sample_tree(root, sessions_per_subject=sessions_per_subject, seed=seed)
    console.print(
        f"Wrote {len(tree.sessions)} sessions ({tree.n_files} files) under [bold]{tree.root}[/]"
    )


@app.command()
def describe(
    part: Annotated[
        str | None, typer.Argument(help="An ALF part, e.g. 'collection'; all parts if left out.")
    ] = None,
) -> None:
    """Print the ALF path pattern and what each part means."""
    from one_flows.alf import ALFError
    from one_flows.alf import describe as describe_part

    try:
        describe_part(part)
    except ALFError as exc:
        raise typer.BadParameter(str(exc), param_hint="PART") from None
