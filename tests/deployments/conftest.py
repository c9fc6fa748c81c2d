"""Fixtures of the tests of deployments/ and docs/: command lines read as their programs do."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from prefect.cli._app import _app as prefect_cli  # parse_args: Prefect's own parser, no run

from one_flows.cli import app as one_flows_cli


def _parse(arguments: list[str]) -> dict[str, Any]:
    program, *rest = arguments
    if Path(program).name == "prefect":
        _, bound, *_ = prefect_cli.parse_args(rest)
        return dict(bound.arguments)
    if Path(program).name == "one-flows":
        name, *options = rest
        command = typer.main.get_command(one_flows_cli).commands[name]
        with command.make_context(name, options) as context:
            return {"command": name, **context.params}
    raise ValueError(f"not a command this fixture reads: {program}")


@pytest.fixture
def parse_command() -> Callable[[list[str]], dict[str, Any]]:
    """Parse a `prefect ...` or `one-flows ...` command line without running it: the
    parameters the program gets (with ``command`` for one-flows); raises on a usage error."""
    return _parse
