"""The sample tree that the README's main command and the tutorials start from."""

import hashlib
from pathlib import Path

from typer.testing import CliRunner

from one_flows.alf import DatasetPath, is_valid
from one_flows.cli import app
from one_flows.sample import REVISION, make_sample_tree


def _digest_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_tree_layout(tmp_path):
    tree = make_sample_tree(tmp_path, sessions_per_subject=2)
    # 3 subjects x (day 1: sessions 001 and 002, day 2: session 001)
    assert len(tree.sessions) == 9
    for rel in tree.sessions:
        lab, subjects, subject, date, number = rel.parts
        assert lab in {"cortexlab", "hoferlab"} and subjects == "Subjects" and subject
        assert date.startswith("2026-01-") and len(number) == 3
        assert (tmp_path / rel / "create_me.flag").is_file()
    first = tmp_path / "cortexlab/Subjects/KS022/2026-01-05/001"
    assert (first / "alf/probe01/spikes.times.npy").is_file()
    assert (first / f"alf/probe00/#{REVISION}#/spikes.times.npy").is_file()
    assert tree.n_files == sum(1 for p in tmp_path.rglob("*") if p.is_file())


def test_tree_is_deterministic_per_seed(tmp_path):
    make_sample_tree(tmp_path / "a", seed=3)
    make_sample_tree(tmp_path / "b", seed=3)
    make_sample_tree(tmp_path / "c", seed=4)
    a, b, c = (_digest_tree(tmp_path / x) for x in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_cli_sample(tmp_path):
    result = CliRunner().invoke(app, ["sample", str(tmp_path), "--sessions-per-subject", "1"])
    assert result.exit_code == 0, result.output
    assert "Wrote 6 sessions" in result.output
    assert len(list(tmp_path.rglob("create_me.flag"))) == 6


def test_every_sample_file_but_the_flag_is_a_valid_alf_dataset(tmp_path):
    tree = make_sample_tree(tmp_path)
    for session in tree.sessions:
        files = [p for p in (tmp_path / session).rglob("*") if p.is_file()]
        assert {p.name for p in files if not is_valid(p.name)} == {"create_me.flag"}
        for path in files:
            if path.name != "create_me.flag":
                assert Path(DatasetPath.parse(path).session_path) == session


def test_cli_describe_part_and_unknown_part():
    runner = CliRunner()
    result = runner.invoke(app, ["describe", "revision"])
    assert result.exit_code == 0 and "REVISION" in result.output
    result = runner.invoke(app, ["describe", "colour"])
    assert result.exit_code != 0 and "colour" in result.output
