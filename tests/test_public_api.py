"""The public surface: the entry points at the top, each package's ``__all__`` exactly its public
names, a cheap and Prefect-free ``import one_flows``, and layers that import only upwards, as the
README's table draws them."""

import ast
import importlib
import inspect
import pkgutil
import pydoc
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import one_flows

REPO = Path(__file__).resolve().parents[1]

ENTRY_POINTS = {
    "AlyxClient": "one_flows.alyx",
    "AlyxCredentials": "one_flows.prefect",
    "One": "one_flows.one",
    "OneFlowsError": "one_flows.errors",
    "RegistrationClient": "one_flows.registration",
}

# The modules and packages of one_flows, top first: each imports only from those before it. The
# private infrastructure modules come right after the error tree: any layer may use them.
LAYERS = [
    "errors",
    "_parquet_append",
    "_prefect_api",
    "_sqlite_files",
    "alf",
    "hashing",
    "walk",
    "alyx",
    "testing",
    "flags",
    "cache",
    "targets",
    "registration",
    "loaders",
    "one",
    "runs",
    "prefect",
    "sample",
    "cli",
]

PACKAGES = sorted(
    f"one_flows.{info.name}" for info in pkgutil.iter_modules(one_flows.__path__) if info.ispkg
)


def test_the_entry_points_are_at_the_top():
    assert one_flows.__all__ == sorted(ENTRY_POINTS)
    for name, home in ENTRY_POINTS.items():
        assert getattr(one_flows, name) is getattr(importlib.import_module(home), name)
        assert name in dir(one_flows)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        one_flows.Nothing  # noqa: B018


def test_importing_one_flows_is_cheap_and_prefect_free():
    heavy = ("prefect", "pandas", "pyarrow", "numpy", "requests")
    code = (
        "import sys, one_flows\n"
        "names = dir(one_flows)\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_shows_the_entry_points_and_the_layers():
    text = pydoc.render_doc(one_flows, renderer=pydoc.plaintext)
    shown = set(re.findall(r"^ {4}class (\w+)", text, re.MULTILINE))
    assert shown == set(ENTRY_POINTS)
    layers = re.findall(r"^ {4}one_flows\.(\w+)", one_flows.__doc__, re.MULTILINE)
    helpers = {"loaders", "sample"}  # of one layer each (ONE, the CLI); not drawn in the guide
    assert layers == [n for n in LAYERS if not n.startswith("_") and n not in helpers]


@pytest.mark.parametrize("name", ["one_flows", *PACKAGES])
def test_each_package_exports_exactly_its_public_names(name):
    """Every name in ``__all__`` is public, defined and (a class or function) documented; every
    public name the package's ``__init__`` binds (its submodules aside) is in ``__all__``."""
    package = importlib.import_module(name)
    exported = package.__all__
    assert len(set(exported)) == len(exported)
    assert [n for n in exported if n.startswith("_")] == []
    for member in exported:
        value = getattr(package, member)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name}.{member} has no docstring"
    bound = {
        n
        for n, value in vars(package).items()
        if not n.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert bound <= set(exported), f"{name} binds public names it does not export"


def _imported_units(path: Path) -> set[str]:
    """The top-level modules and packages of one_flows that a source file imports."""
    units = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "one_flows":
                units |= {alias.name for alias in node.names}
            elif node.module.startswith("one_flows."):
                units.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            units |= {a.name.split(".")[1] for a in node.names if a.name.startswith("one_flows.")}
    return units


def test_each_layer_imports_only_from_the_layers_above_it():
    package = REPO / "one_flows"
    wrong = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "__init__.py":  # the facade: its entry points load on access
            continue
        unit = path.relative_to(package).with_suffix("").parts[0]
        assert unit in LAYERS, f"{unit}: place it in LAYERS (and in the README's table)"
        for imported in _imported_units(path) - {unit}:
            if LAYERS.index(imported) > LAYERS.index(unit):
                wrong.append(f"{path.relative_to(REPO)} imports one_flows.{imported}")
    assert wrong == []


def test_the_readme_table_lists_the_layers_in_order():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| layer | module |") :].split("\n\n")[0]
    modules = [row.split("|")[2] for row in table.splitlines()[2:]]
    listed = [name for cell in modules for name in re.findall(r"`one_flows\.(\w+)`", cell)]
    public = [name for name in LAYERS if not name.startswith("_")]
    assert listed == public


def test_the_readme_imports_only_exported_names():
    readme = (REPO / "README.md").read_text()
    imports = re.findall(r"^(?:>>> )?from (one_flows[\w.]*) import ([\w, ]+)", readme, re.MULTILINE)
    assert len(imports) > 5
    for module, names in imports:
        exported = importlib.import_module(module).__all__
        for name in names.split(","):
            assert name.strip() in exported, f"README imports {name.strip()} from {module}"
