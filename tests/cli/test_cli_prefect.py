"""The Prefect-facing commands: register (on the embedded API), cache, search, list, watch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from one_flows.cache import load_tables
from one_flows.cli import app
from one_flows.flags import find_flags, is_flag_file
from one_flows.sample import make_sample_tree

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, int]:
    """The sample tree after `one-flows register` ran on it, with no Prefect server set, and
    its number of data files (the flags are not data)."""
    home = tmp_path_factory.mktemp("home")
    root = tmp_path_factory.mktemp("data")
    tree = make_sample_tree(root)
    n_data_files = tree.n_files - len(tree.sessions)
    env = {
        **os.environ,
        "HOME": str(home),
        "PREFECT_HOME": str(home / ".prefect"),
        "COLUMNS": "200",
    }
    env.pop("PREFECT_API_URL", None)
    one_flows = Path(sys.executable).with_name("one-flows")
    done = subprocess.run(
        [str(one_flows), "register", str(root)], env=env, capture_output=True, text=True
    )
    return root, done, n_data_files


def test_register_runs_the_flow_on_the_embedded_api(registered):
    root, done, n_data_files = registered
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Starting Prefect's embedded API" in done.stdout
    assert f"local:{root}" in done.stdout
    assert done.stdout.count("registered") == 9
    assert f"9 sessions; files: {n_data_files} created" in done.stdout
    assert list(find_flags(root)) == []
    datasets = load_tables(root).datasets
    assert len(datasets) == n_data_files
    assert not any(is_flag_file(p.rpartition("/")[2]) for p in datasets["rel_path"])


def test_list_and_search_read_the_registered_tables(registered):
    root, *_ = registered
    listed = runner.invoke(app, ["list", str(root)])
    assert listed.exit_code == 0 and listed.output.count("2026-01-0") == 9
    found = runner.invoke(app, ["search", str(root), "--subject", "KS022", "--date", "2026-01-05"])
    assert found.exit_code == 0 and "2 sessions" in found.output
    session = str(root / "cortexlab/Subjects/KS022/2026-01-05/001")
    datasets = runner.invoke(app, ["list", str(root), session])
    assert datasets.exit_code == 0 and "alf/_ibl_trials.choice.npy" in datasets.output


def test_cache_indexes_a_folder(tmp_path):
    make_sample_tree(tmp_path / "data", sessions_per_subject=1)
    result = runner.invoke(
        app, ["cache", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "t")]
    )
    assert result.exit_code == 0, result.output
    assert "sessions +6 -0" in result.output
    again = runner.invoke(
        app, ["cache", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "t")]
    )
    assert "sessions +0 -0" in again.output and "0 files hashed" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["register", "{missing}"], "is not a folder"),
        (["register", "{root}", "--alyx", "https://a.org", "--cache-dir", "{root}"], "not both"),
        (["watch", "{root}"], "PREFECT_API_URL"),
        (["list", "{root}"], "no cache tables"),
    ],
)
def test_commands_refuse_bad_input_before_starting_prefect(tmp_path, args, message):
    values = {"root": str(tmp_path), "missing": str(tmp_path / "missing")}
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = runner.invoke(app, [a.format(**values) for a in args], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert message in result.output
