"""The systemd units of deployments/systemd work as written.

Each unit is checked twice: by `systemd-analyze verify` (on a copy whose /opt/one-flows paths
point at this checkout and its virtualenv, so that the commands it names exist), and by reading
it with systemd's rules (systemd.syntax(7), systemd.exec(5), systemd.service(5)) to get the
argument list each ExecStart= line runs, which is then parsed by the program itself.
"""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = sorted((REPO / "deployments" / "systemd").glob("*.service"))
INSTALL = "/opt/one-flows"
"""Where the units expect the one-flows checkout, with its virtualenv in .venv."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """The ``(key, value)`` lines of each section, in order (comments, blanks and line
    continuations handled as systemd does)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, separator, value = line.partition("=")
        if current is None or not separator:
            raise ValueError(f"not a setting in a section: {line!r}")
        current.append((key.strip(), value.strip()))
    return sections


def environment(service: list[tuple[str, str]]) -> dict[str, str]:
    """The variables the Environment= lines set; an assignment split off by unquoted spaces
    (systemd ignores it with a warning) raises ValueError."""
    variables = {}
    for key, value in service:
        if key != "Environment":
            continue
        for word in shlex.split(value):
            name, separator, assigned = word.partition("=")
            if not separator or not _NAME.fullmatch(name):
                raise ValueError(f"Environment={value}: {word!r} is not an assignment")
            variables[name] = assigned
    return variables


def command_line(value: str, variables: dict[str, str], host: str) -> list[str]:
    """The arguments an ExecStart= value runs: quotes removed, the specifiers %H and %%
    replaced, ``$NAME`` (a word of its own) split into words, ``${NAME}`` put in one word."""
    words = shlex.split(value.lstrip("@-:+!|"))
    arguments: list[str] = []
    for word in words:
        unknown = set(re.findall(r"%.", word)) - {"%H", "%%"}
        if unknown:
            raise ValueError(f"specifiers this test does not know: {sorted(unknown)}")
        word = word.replace("%H", host).replace("%%", "%")
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            arguments += variables[whole[1]].split()
            continue
        word = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: variables[m[1]], word)
        if "$" in word:
            raise ValueError(f"{word!r}: systemd expands $NAME only as a word of its own")
        arguments.append(word)
    if not arguments[0].startswith("/"):
        raise ValueError(f"ExecStart= needs an absolute path, not {arguments[0]!r}")
    return arguments


def _service(unit: Path) -> list[tuple[str, str]]:
    return read_unit(unit.read_text())["Service"]


def _run(unit: Path) -> list[str]:
    service = _service(unit)
    (start,) = [value for key, value in service if key == "ExecStart"]
    return command_line(start, environment(service), host="rig-a")


def test_the_units_are_there() -> None:
    assert [u.name for u in UNITS] == [
        "one-flows-serve.service",
        "one-flows-watch.service",
        "prefect-server.service",
        "prefect-worker.service",
    ]


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="needs systemd-analyze (apt-get install systemd; .ci/run installs it)",
)
@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_analyze_verify_accepts_the_unit(unit: Path, tmp_path: Path) -> None:
    text = unit.read_text()
    assert INSTALL in text
    here = text.replace(f"{INSTALL}/.venv/bin", str(Path(sys.executable).parent))
    copy = tmp_path / unit.name
    copy.write_text(here.replace(INSTALL, str(REPO)))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_reading_finds_what_systemd_warns_about() -> None:
    broken = "[Service]\nEnvironment=WORK_QUEUES=--work-queue rig-a --work-queue shared\n"
    with pytest.raises(ValueError, match="'rig-a' is not an assignment"):
        environment(read_unit(broken)["Service"])
    quoted = '[Service]\nEnvironment="WORK_QUEUES=--work-queue rig-a" X=1\n'
    variables = environment(read_unit(quoted)["Service"])
    assert variables == {"WORK_QUEUES": "--work-queue rig-a", "X": "1"}
    assert command_line("/bin/a $WORK_QUEUES ${WORK_QUEUES} %H", variables, "h") == [
        "/bin/a",
        "--work-queue",
        "rig-a",
        "--work-queue rig-a",
        "h",
    ]
    with pytest.raises(ValueError, match="absolute"):
        command_line("prefect worker start", {}, "h")


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_every_command_is_one_the_install_provides(unit: Path) -> None:
    service = dict(_service(unit))
    program = Path(_run(unit)[0])
    assert program.parent == Path(INSTALL, ".venv", "bin")
    assert (Path(sys.executable).parent / program.name).is_file()  # `prefect` or `one-flows`
    if "WorkingDirectory" in service:  # the checkout the deployments were made from
        assert service["WorkingDirectory"] == INSTALL
        assert (REPO / "prefect.yaml").is_file() and (REPO / "flows").is_dir()
    for copied in re.findall(r"sudo cp (\S+) ", unit.read_text()):
        assert (REPO / copied).resolve() == unit


def test_the_worker_polls_its_queues_with_its_limit(parse_command) -> None:
    arguments = _run(REPO / "deployments/systemd/prefect-worker.service")
    assert arguments[1:3] == ["worker", "start"]
    assert parse_command(arguments) == {
        "work_pool_name": "lab",
        "worker_type": "process",
        "worker_name": "rig-a",
        "work_queues": ["rig-a", "shared"],
        "limit": 4,
    }


def test_the_server_listens_on_all_interfaces_at_4200(parse_command) -> None:
    unit = REPO / "deployments/systemd/prefect-server.service"
    assert parse_command(_run(unit)) == {"host": "0.0.0.0", "port": 4200}
    variables = environment(_service(unit))
    assert variables["PREFECT_SERVER_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    # The UI's API URL follows settings, not --host/--port: it must be given, with the port.
    ui_api = urlsplit(variables["PREFECT_UI_API_URL"])
    assert (ui_api.hostname not in ("127.0.0.1", "localhost", "0.0.0.0"), ui_api.port) == (
        True,
        4200,
    )


def test_the_watcher_watches_the_data_root(parse_command) -> None:
    parameters = parse_command(_run(REPO / "deployments/systemd/one-flows-watch.service"))
    assert parameters["command"] == "watch"
    assert (str(parameters["root"]), parameters["interval"]) == ("/mnt/rig-a/Data", 10.0)
    assert parameters["quiet_seconds"] is None  # the flows' default


def test_serve_serves_the_data_root_with_its_options(parse_command) -> None:
    parameters = parse_command(_run(REPO / "deployments/systemd/one-flows-serve.service"))
    assert parameters["command"] == "serve"
    assert (str(parameters["root"]), parameters["limit"]) == ("/mnt/s0/Data", 4)


def test_the_drop_ins_the_docs_show_are_whole_assignments(parse_command) -> None:
    """`systemctl edit` adds the docs' [Service] lines after the unit's own: later ones win."""
    worker = _service(REPO / "deployments/systemd/prefect-worker.service")
    docs = (REPO / "docs" / "scaling.md").read_text()
    drop_ins = re.findall(r"^```ini\n(.*?)^```", docs, re.MULTILINE | re.DOTALL)
    assert drop_ins
    for text in drop_ins:
        lines = read_unit(text)["Service"]
        environment(lines)
        if any("WORK_QUEUES" in value for _, value in lines):
            (start,) = [value for key, value in worker if key == "ExecStart"]
            arguments = command_line(start, environment(worker + lines), host="rig-b")
            assert parse_command(arguments)["work_queues"] == ["rig-b"]
