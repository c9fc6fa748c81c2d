"""one-flows as a Prefect collection: its block is found by Prefect's own loaders."""

import subprocess
import sys
from importlib.metadata import entry_points

from prefect.blocks.core import Block
from prefect.utilities.importtools import load_module

from one_flows.prefect.blocks import AlyxCredentials


def test_importing_the_library_does_not_import_prefect():
    modules = "one_flows, one_flows.registration, one_flows.one, one_flows.flags"
    code = f"import sys, {modules}; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_block_register_module_finds_the_credentials_block():
    """What `prefect block register -m one_flows` scans: the package's members."""
    module = load_module("one_flows")
    blocks = {
        name: member
        for name in dir(module)
        if isinstance(member := getattr(module, name), type) and issubclass(member, Block)
    }
    assert blocks == {"AlyxCredentials": AlyxCredentials}


def test_prefect_collections_entry_point_loads_the_blocks_module():
    (entry,) = [e for e in entry_points(group="prefect.collections") if e.name == "one_flows"]
    assert entry.load().AlyxCredentials is AlyxCredentials
