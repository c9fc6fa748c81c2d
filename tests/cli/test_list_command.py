"""`one-flows list CACHE_DIR SESSION` on a session the tables do not hold says so and fails."""

from typer.testing import CliRunner

from one_flows.cache import make_parquet_db
from one_flows.cli import app
from one_flows.sample import make_sample_tree

runner = CliRunner()


def test_list_of_an_unknown_session_exits_non_zero_saying_so(tmp_path):
    tree = make_sample_tree(tmp_path / "data", sessions_per_subject=1)
    make_parquet_db(tmp_path / "data")
    known = str(tree.sessions[0])

    listed = runner.invoke(app, ["list", str(tmp_path / "data"), known])
    unknown = runner.invoke(
        app, ["list", str(tmp_path / "data"), "nobody/2026-01-05/001"], env={"COLUMNS": "300"}
    )

    assert listed.exit_code == 0 and "datasets" in listed.output
    assert unknown.exit_code == 2
    assert "no such session" in unknown.output and "0 datasets" not in unknown.output
