"""The `one-flows` command."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from one_flows._prefect_api import EmbeddedAPI

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


def _api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def _check_api() -> None:
    """Fail clearly when the configured Prefect API does not answer."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        failure = client.api_healthcheck()
    if failure is not None:
        raise RuntimeError(f"the Prefect API at {_api_url()} does not answer: {failure}")


def _sessions_done(found: list, flag: str) -> int:
    """How many of the flags found before the run are no longer waiting or claimed."""
    from one_flows.flags import FlagState, find_flags

    claimed = {FlagState.CLAIMED}
    return sum(
        1
        for f in found
        if not f.path.exists()
        and not any(find_flags(f.session_path, (flag,), claimed, on_error=None))
    )


def _summary_table(summary: Any) -> Table:
    table = Table(title=f"{summary.root} → {summary.target}", title_justify="left")
    table.add_column("Session")
    table.add_column("Status")
    for status in ("created", "unchanged", "skipped", "failed", "would register"):
        if status in summary.file_counts:
            table.add_column(status, justify="right")
    shown = [c.header for c in table.columns[2:]]
    table.add_column("Why", overflow="fold")
    style = {
        "registered": "green",
        "unchanged": "green",
        "failed": "red",
        "quarantined": "red",
        "would fail": "red",
        "pending": "yellow",
        "taken": "yellow",
    }
    for s in summary.sessions:
        counts = s.counts
        table.add_row(
            s.session_path,
            f"[{style.get(s.status, 'cyan')}]{s.status}[/]",
            *(str(counts.get(status, 0)) for status in shown),
            s.reason or "",
        )
    return table


def _nothing_ready(root: Path, flag: str, quiet_seconds: float) -> bool:
    """Whether no flagged session under ``root`` is ready to register; if so, say so.

    Ready is the flow's rule: a claimable flag whose session has been quiet ``quiet_seconds``
    (`one_flows.flags.is_quiet`). A claim held by a run counts as work, since the flow may
    take it back. Needs neither Prefect nor a Prefect API, so that a run with nothing to do
    costs a scan of the folder and not the boot of an API.
    """
    from one_flows.flags import CLAIMABLE, FlagState, find_flags, is_quiet

    problems: list = []
    waiting = 0
    try:
        for found in find_flags(root, (flag,), {*CLAIMABLE, FlagState.CLAIMED}, problems.append):
            if found.state is FlagState.CLAIMED or is_quiet(found.session_path, quiet_seconds):
                return False
            waiting += 1
    except ValueError as exc:  # not a flag name
        raise typer.BadParameter(str(exc), param_hint="--flag") from None
    except OSError:  # a session changing under the scan: the flow will look again
        return False
    for problem in problems:
        console.print(f"[yellow]skipping flag: {problem}[/]")
    if waiting:
        console.print(
            f"Nothing to register under {root} yet: {waiting} flagged session(s) changed "
            f"within the last {quiet_seconds:g} s (--quiet-seconds)."
        )
    else:
        console.print(f"Nothing to register under {root}: no session is flagged ({flag}).")
    return True


def _import_flow_engine() -> None:
    """Import what Prefect imports as a flow run starts, while the embedded API still boots.

    Prefect imports its flow and task engines, and FastAPI's encoder for the flow's parameters,
    only when the flow is called: 0.1 s of CPU that would otherwise follow the boot.
    """
    import importlib

    for module in ("fastapi.encoders", "prefect.flow_engine", "prefect.task_engine"):
        importlib.import_module(module)


@app.command()
def register(
    root: Annotated[
        Path, typer.Argument(help="The data folder to register flagged sessions from.")
    ],
    alyx: Annotated[
        str | None,
        typer.Option(help="An Alyx URL, or the name of an AlyxCredentials block."),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Register into ONE cache tables in this folder.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show what would be registered, or refused; change nothing."
        ),
    ] = False,
    flag: Annotated[str, typer.Option(help="The flag file that marks a session.")] = (
        "create_me.flag"
    ),
    quiet_seconds: Annotated[
        float, typer.Option(min=0, help="Take only sessions whose files are unchanged this long.")
    ] = 0.0,
    max_parallel_sessions: Annotated[int, typer.Option(min=1, help="Sessions at once.")] = 4,
    recheck: Annotated[
        bool,
        typer.Option(
            "--recheck",
            help="Ask the target about every session, whatever this machine's ledger of past "
            "registrations says (e.g. after datasets were deleted on the server).",
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the logs of the flow and task runs.")
    ] = False,
) -> None:
    """Register the flagged sessions under ROOT, with the register-new-sessions flow.

    Into Alyx with --alyx (or ALYX_URL), else into ONE cache tables (in ROOT, or --cache-dir).
    The flow runs on the Prefect server in PREFECT_API_URL, or on Prefect's embedded API.
    With no flagged session ready (none, or all still changing), it says so and ends at once:
    no Prefect API is started or asked, and nothing is recorded in Prefect.
    """
    if not root.is_dir():
        raise typer.BadParameter(f"{root} is not a folder", param_hint="ROOT")
    if alyx and cache_dir:
        raise typer.BadParameter("give --alyx or --cache-dir, not both")
    if _nothing_ready(root, flag, quiet_seconds):
        return
    from one_flows._prefect_api import EmbeddedAPI

    # Started first, before Prefect is imported, so that it boots while this process imports
    # and scans the folder; settled once Prefect's settings are read.
    embedded = EmbeddedAPI.settle(EmbeddedAPI.launch_early())
    if embedded is None:
        console.print(f"Connecting to the Prefect API at {_api_url()}")
    else:
        console.print(
            "Starting Prefect's embedded API (about 10 s; set PREFECT_API_URL to use a server)"
        )
    try:
        _register(
            root,
            embedded,
            alyx=alyx,
            cache_dir=cache_dir,
            flag=flag,
            dry_run=dry_run,
            quiet_seconds=quiet_seconds,
            max_parallel_sessions=max_parallel_sessions,
            recheck=recheck,
            verbose=verbose,
        )
    finally:
        if embedded is not None:
            embedded.stop()


def _register(
    root: Path,
    embedded: EmbeddedAPI | None,
    *,
    flag: str,
    dry_run: bool,
    recheck: bool,
    verbose: bool,
    **parameters: Any,
) -> None:
    """Run the flow on the configured API or on ``embedded``, with a progress bar and a summary."""
    import threading

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from one_flows.flags import find_flags
    from one_flows.prefect.register import RegistrationOptions, register_new_sessions
    from one_flows.registration import RunFailed
    from one_flows.runs import RegistrationSummary

    if not verbose:
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).setLevel(logging.WARNING)
    found = list(find_flags(root, (flag,)))
    with console.status("Waiting for the Prefect API…"):
        _import_flow_engine()
        if embedded is None:
            _check_api()
        else:
            embedded.wait_ready().use()
    results: list = []

    def run() -> None:
        results.append(
            register_new_sessions(
                root,
                flag=flag,
                dry_run=dry_run,
                options=RegistrationOptions(recheck=recheck),
                return_state=True,
                **parameters,
            )
        )

    worker = threading.Thread(target=run, name="register-new-sessions")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("Registering sessions", total=len(found))
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
            if not dry_run:
                progress.update(bar, completed=_sessions_done(found, flag))
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()  # the embedded API stops with this process
    state = results[0]
    result = state.result(raise_on_failure=False)
    summary = result.summary if isinstance(result, RunFailed) else result
    if isinstance(summary, RegistrationSummary):
        console.print(_summary_table(summary))
        counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.file_counts.items()))
        console.print(f"{len(summary.sessions)} sessions; files: {counts or 'none'}")
    if not state.is_completed():
        console.print(f"[red]The registration flow ended {state.name}: {state.message}[/]")
        raise typer.Exit(1)


@app.command()
def watch(
    root: Annotated[Path, typer.Argument(help="The data folder to watch for flag files.")],
    flag: Annotated[str, typer.Option(help="The flag file that marks a session.")] = (
        "create_me.flag"
    ),
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between scans.")] = 10.0,
    quiet_seconds: Annotated[
        float | None,
        typer.Option(
            min=0,
            show_default="the flows' default quiet time",
            help="Announce a session once its data (files other than flags) are unchanged this "
            "long; the on-flag deployment's run then checks the same time.",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Announce the flagged sessions ready now, then exit.")
    ] = False,
) -> None:
    """Announce each newly flagged session under ROOT as a one.session.flagged event.

    The on-flag deployment of prefect.yaml turns each event into a registration; needs a
    Prefect server (PREFECT_API_URL).
    """
    from one_flows.flags import QUIET_SECONDS, FlagWatcher
    from one_flows.prefect.events import emit_session_flagged

    if not _api_url():
        raise typer.BadParameter("watch sends events to a Prefect server: set PREFECT_API_URL")
    quiet_seconds = QUIET_SECONDS if quiet_seconds is None else quiet_seconds
    watcher = FlagWatcher(root, interval=interval, quiet_seconds=quiet_seconds, names=(flag,))
    sessions = watcher.poll() if once else watcher.watch()
    try:
        for session in sessions:
            emit_session_flagged(session, flag, quiet_seconds)
            console.print(f"flagged: {session}", soft_wrap=True)  # one journal line each
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        for session in watcher.waiting if once else ():
            console.print(f"not yet quiet for {quiet_seconds:g} s: {session}", soft_wrap=True)
        from prefect.events.worker import EventsWorker

        EventsWorker.drain_all()


@app.command()
def cache(
    root: Annotated[Path, typer.Argument(help="The data folder to index.")],
    cache_dir: Annotated[
        Path | None, typer.Option(help="Where the tables are (default: ROOT).")
    ] = None,
    hash_files: Annotated[
        bool | None, typer.Option(help="Store each file's md5 (default: as the tables do).")
    ] = None,
) -> None:
    """Build or update the ONE cache tables (sessions.pqt, datasets.pqt) of ROOT."""
    from one_flows.cache import update_tables

    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        summary = update_tables(root, cache_dir, hash_files=hash_files)
    except NotADirectoryError as exc:
        raise typer.BadParameter(str(exc), param_hint="ROOT") from None
    console.print(
        f"{cache_dir or root}: sessions +{summary.sessions_added} -{summary.sessions_removed}; "
        f"datasets +{summary.datasets_added} -{summary.datasets_removed} "
        f"~{summary.datasets_changed} (={summary.datasets_unchanged}); "
        f"{summary.files_hashed} files hashed"
    )


def _one(cache_dir: Path) -> Any:
    from one_flows.one import One

    if not (cache_dir / "sessions.pqt").exists():
        raise typer.BadParameter(
            f"no cache tables in {cache_dir}: run `one-flows cache` or `one-flows register` first",
            param_hint="CACHE_DIR",
        )
    return One(cache_dir)


def _sessions_table(records: list[dict]) -> Table:
    table = Table()
    for column in ("id", "lab", "subject", "date", "number"):
        table.add_column(column)
    for r in records:
        table.add_row(
            str(r["id"]), r.get("lab") or "", r["subject"], str(r["date"]), str(r["number"])
        )
    return table


@app.command()
def search(
    cache_dir: Annotated[Path, typer.Argument(help="A folder of ONE cache tables.")],
    subject: Annotated[str | None, typer.Option(help="Subject (regular expression).")] = None,
    lab: Annotated[str | None, typer.Option(help="Lab (regular expression).")] = None,
    date: Annotated[
        list[str] | None, typer.Option(help="A date, or twice for a range (YYYY-MM-DD).")
    ] = None,
    dataset: Annotated[
        list[str] | None, typer.Option(help="A dataset file name the session must have.")
    ] = None,
) -> None:
    """Search the sessions of ONE cache tables."""
    dates = date[0] if date and len(date) == 1 else date
    terms = {"subject": subject, "laboratory": lab, "date_range": dates, "datasets": dataset}
    _, records = _one(cache_dir).search(details=True, **{k: v for k, v in terms.items() if v})
    console.print(_sessions_table(records))
    console.print(f"{len(records)} sessions")


@app.command(name="list")
def list_(
    cache_dir: Annotated[Path, typer.Argument(help="A folder of ONE cache tables.")],
    session: Annotated[
        str | None, typer.Argument(help="A session id or folder: list its datasets.")
    ] = None,
) -> None:
    """List the sessions of ONE cache tables, or the datasets of one session."""
    one = _one(cache_dir)
    if session is None:
        _, records = one.search(details=True)
        console.print(_sessions_table(records))
        return
    try:
        eid = one.to_eid(session)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="SESSION") from None
    if eid is None:
        raise typer.BadParameter(f"no such session in {cache_dir}: {session}", param_hint="SESSION")
    datasets = one.list_datasets(eid)
    for name in datasets:
        console.print(name)
    console.print(f"{len(datasets)} datasets")


@app.command()
def download(
    session: Annotated[str, typer.Argument(help="A session id, or subject/date/number.")],
    obj: Annotated[str | None, typer.Option("--object", help="Only this ALF object.")] = None,
    collection: Annotated[str | None, typer.Option(help="Only this collection.")] = None,
    alyx: Annotated[str | None, typer.Option(help="The Alyx URL (default: ALYX_URL).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Where the files go.")] = None,
) -> None:
    """Download a session's files (or an object's) from an Alyx's data server, with progress."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from one_flows.one import DownloadError, One

    columns = (*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("downloading", total=None)
        one = One(
            base_url=alyx,
            cache_dir=cache_dir,
            mode="remote",
            progress=lambda p: bar.update(task, total=p.bytes_total, completed=p.bytes_done),
        )
        try:
            if obj:
                paths = one.load_object(session, obj, collection=collection, download_only=True)
            else:
                names = one.list_datasets(session, collection=collection)
                paths, _ = one.load_datasets(session, names, download_only=True)
        except DownloadError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    console.print(f"{len(paths)} files in {one.eid2path(session)}")


@app.command()
def serve(
    root: Annotated[
        Path | None, typer.Option(help="The data folder (default: prefect.yaml's).")
    ] = None,
    alyx: Annotated[
        str | None, typer.Option(help="The name of the AlyxCredentials block to register into.")
    ] = None,
    prefect_file: Annotated[
        Path | None, typer.Option(help="The deployments to serve (default: one-flows').")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Flow runs at once, at most.")] = None,
) -> None:
    """Serve every deployment of prefect.yaml from this process, until interrupted."""
    from one_flows.prefect.serve import DEFAULT_PREFECT_FILE, block_reference
    from one_flows.prefect.serve import serve as serve_deployments

    parameters: dict[str, Any] = {"root": str(root)} if root else {}
    if alyx:
        try:
            parameters["alyx"] = block_reference(alyx)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--alyx") from None
    console.print(f"Serving the deployments of {prefect_file or DEFAULT_PREFECT_FILE}")
    serve_deployments(prefect_file or DEFAULT_PREFECT_FILE, parameters, limit=limit)
