"""one-flows as a Prefect collection and an installed package: its block is found by Prefect's own
loaders, the Prefect layer is one package, and what `one-flows serve` needs ships with it."""

import os
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from importlib.resources import files
from pathlib import Path

from prefect.blocks.core import Block
from prefect.utilities.importtools import load_module

from one_flows.prefect.blocks import AlyxCredentials

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_library_does_not_import_prefect():
    modules = "one_flows, one_flows.registration, one_flows.one, one_flows.flags, one_flows.runs"
    code = f"import sys, {modules}; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_block_register_module_finds_the_credentials_block():
    """What `prefect block register -m one_flows` scans: the package's members."""
    for name in ("one_flows", "one_flows.prefect"):
        module = load_module(name)
        blocks = {
            name: member
            for name in dir(module)
            if isinstance(member := getattr(module, name), type) and issubclass(member, Block)
        }
        assert blocks == {"AlyxCredentials": AlyxCredentials}


def test_prefect_collections_entry_point_loads_the_blocks_module():
    (entry,) = [e for e in entry_points(group="prefect.collections") if e.name == "one_flows"]
    assert entry.load().AlyxCredentials is AlyxCredentials


def test_the_cli_and_the_library_do_not_import_the_flows_folder():
    """`flows/` holds the entry points of a checkout; nothing installed depends on it."""
    importing = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "one_flows").rglob("*.py")
        if any(
            line.lstrip().startswith(("from flows", "import flows"))
            for line in p.read_text().splitlines()
        )
    ]
    assert importing == []
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert packages["packages"]["find"]["include"] == ["one_flows*"]


def test_prefect_yaml_ships_with_the_package(tmp_path):
    """The package's prefect.yaml is the checkout's, declared as package data, and its
    deployments load from another folder, where neither the checkout nor `flows` is importable."""
    packaged = files("one_flows.prefect").joinpath("prefect.yaml")
    assert packaged.read_text() == (REPO / "prefect.yaml").read_text()
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "prefect/prefect.yaml" in package_data["package-data"]["one_flows"]
    code = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('flows') is None, 'flows is importable'\n"
        "from one_flows.prefect.serve import load_deployments\n"
        "print(sorted(f'{d.flow_name}/{d.name}' for d in load_deployments()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(
        sorted(
            [
                "preprocess/on-registered",
                "register-new-sessions/on-flag",
                "register-new-sessions/sweep",
                "register-session/on-demand",
                "update-cache/nightly",
            ]
        )
    )


def test_serving_from_the_checkout_takes_a_block_name_for_alyx():
    """Deployments refuse an Alyx URL (`block_reference`): the help says what they take."""
    out = subprocess.run(
        [sys.executable, str(REPO / "deployments/serve.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "AlyxCredentials block" in out.stdout and "URL" not in out.stdout
