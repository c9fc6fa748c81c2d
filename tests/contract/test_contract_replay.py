"""Replay every exchange recorded from a real Alyx 3.6 server against `AlyxTestServer`.

Each exchange is one test, over real HTTP. The exchanges of a scenario are played in file and
exchange order from a freshly seeded server: ``14-one-remote`` alone (the README says so), the
other files together. Later exchanges depend on what earlier ones created (the token, sessions,
datasets...), so each test first brings a server to the point just before its exchange, playing
(and checking) the exchanges before it: tests pass alone, in any selection and in any order.
The answer must match the recording: status, content type, and for JSON bodies the keys, the
value types and the values once normalised (see ``recordings/README.md``).

Deliberate differences, each asserted in a weaker form (see ``DIFFERENCES``):

* ``api-schema`` and ``docs.coreapi``: the recordings only summarise these documents; we compare
  the summary (top-level keys, and for the OpenAPI document each path with its methods).
* ``docs.html``: our Redoc page is a shorter HTML page; it must load the same schema URL.
* ``throttled``: the recording's 429 came after unrecorded requests used up the 20/minute limit
  of the ``/docs/`` scope; the test sends such requests first.
* ``14-one-remote::api-schema`` and ``describe-dataset.all``: summarised in the recording (the
  GET parameters of the paths ONE-api uses; the dataset type names); we compare the summary.
* ``14-one-remote::cache-info.redirected``: the recording names the real server's folder
  (``<alyx-root>``); ours names its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from one_flows.testing import AlyxTestServer

RECORDINGS = Path(__file__).parent / "recordings"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "alyx-contract"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PLACEHOLDER = re.compile(r"<uuid:[^>]*>|<token>|<password>")
ALONE = "14-one-remote"  # played on a server of its own, from the starting state
BIRTH_DATE = date(2019, 1, 1)  # the seeded subject's

DIFFERENCES = {
    "13-schema-and-misc::api-schema": "the recording keeps a summary of the OpenAPI document",
    "13-schema-and-misc::docs.coreapi": "the recording keeps the coreapi document's keys only",
    "13-schema-and-misc::docs.html": "our Redoc page is a shorter HTML page",
    "13-schema-and-misc::throttled": "the requests that used up the /docs/ limit were not recorded",
    "14-one-remote::one-remote.api-schema": "the recording keeps the GET parameters of some paths",
    "14-one-remote::one-remote.describe-dataset.all": "the recording keeps the names only",
    "14-one-remote::one-remote.cache-info.redirected": "the missing file's folder is the server's",
}


def scenario_of(name: str) -> str:
    """The scenario an exchange belongs to: the exchanges played together from the start."""
    return ALONE if name.startswith(f"{ALONE}::") else "01-13"


def _exchanges() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(RECORDINGS.glob("*.json")):
        group = json.loads(path.read_text())
        found += [(f"{group['group']}::{e['name']}", e) for e in group["exchanges"]]
    return found


EXCHANGES = _exchanges()
SCENARIOS: dict[str, list[tuple[str, dict[str, Any]]]] = {}
for _name, _exchange in EXCHANGES:
    SCENARIOS.setdefault(scenario_of(_name), []).append((_name, _exchange))


class Replay:
    """The server under test and what earlier exchanges bound: the token and the UUIDs.

    ``played`` counts the exchanges of its scenario played on it, in order, all as recorded.
    """

    def __init__(self, server: AlyxTestServer) -> None:
        self.server = server
        self.bound: dict[str, str] = {"<password>": server.password}
        self.played = 0

    def fill(self, value: Any) -> Any:
        """A recorded request value with the placeholders bound so far put in."""
        if isinstance(value, str):
            return PLACEHOLDER.sub(lambda m: self.bound[m.group(0)], value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def send(self, request: dict[str, Any]) -> requests.Response:
        headers = {"Accept": "application/json", **self.fill(request["headers"])}
        body: dict[str, Any] = {}
        if "json" in request:
            body["data"] = json.dumps(self.fill(request["json"]))
        elif "form" in request:
            body["data"] = self.fill(request["form"])
        # requests leaves out a header whose value is None ("Accept": null = no Accept at all).
        return requests.request(
            request["method"],
            self.server.url + self.fill(request["path"]),
            headers=headers,
            timeout=30,
            allow_redirects=False,
            **body,
        )

    def local(self, value: Any) -> Any:
        """An answer's value with this server's scheme and host stripped from its own URLs."""
        if isinstance(value, str) and value.startswith(self.server.url):
            return value[len(self.server.url) :]
        return value


def match(
    expected: Any, actual: Any, bound: dict[str, str], unordered: frozenset[str], where: str = "$"
) -> dict[str, str]:
    """The bindings after matching ``actual`` to the recorded ``expected``; AssertionError if not.

    Placeholders of values the server picks (``<now>``, ``<age_weeks>``, unbound UUIDs and the
    token) are checked for their form and bound; everything else must be equal, type included.
    """
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        assert sorted(actual) == sorted(expected), f"{where}: keys {sorted(actual)}"
        for key, value in expected.items():
            if key in unordered:
                bound = match_multiset(value, actual[key], bound, f"{where}.{key}")
            else:
                bound = match(value, actual[key], bound, frozenset(), f"{where}.{key}")
        return bound
    if isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{where}: {len(actual)} items, not {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            bound = match(e, a, bound, frozenset(), f"{where}[{i}]")
        return bound
    if expected == "<now>":
        assert isinstance(actual, str), f"{where}: {actual!r} is no datetime"
        datetime.fromisoformat(actual)
        return bound
    if expected == "<age_weeks>":
        assert actual == (date.today() - BIRTH_DATE).days // 7, f"{where}: age {actual!r}"
        return bound
    if isinstance(expected, str) and any(p in expected for p in ("<uuid:", "<token>", "<alyx-")):
        return match_string(expected, actual, bound, where)
    assert type(actual) is type(expected), f"{where}: {actual!r} is not a {type(expected)}"
    assert actual == expected, f"{where}: {actual!r} != {expected!r}"
    return bound


def match_string(expected: str, actual: Any, bound: dict[str, str], where: str) -> dict[str, str]:
    """Match a string holding placeholders; the first appearance of one binds it."""
    assert isinstance(actual, str), f"{where}: expected a string, got {actual!r}"
    pattern, names = "", []
    for part in re.split(r"(<uuid:[^>]*>|<token>|<alyx-root>)", expected):
        if part in bound:
            pattern += re.escape(bound[part])
        elif part == "<alyx-root>":
            pattern += "/[^']+"
        elif part.startswith("<uuid:") or part == "<token>":
            pattern += f"({UUID if part != '<token>' else '[0-9a-f]{40}'})"
            names.append(part)
        else:
            pattern += re.escape(part)
    found = re.fullmatch(pattern, actual)
    assert found, f"{where}: {actual!r} does not match {expected!r}"
    new = dict(bound)
    for name, value in zip(names, found.groups(), strict=True):
        assert new.setdefault(name, value) == value, f"{where}: {name} is bound twice"
    return new


def match_multiset(
    expected: list[Any], actual: list[Any], bound: dict[str, str], where: str
) -> dict[str, str]:
    """Match lists whose order the server does not define: each item pairs with one item."""
    assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
    assert len(actual) == len(expected), f"{where}: {len(actual)} items, not {len(expected)}"
    left = list(actual)
    for i, item in enumerate(expected):
        for candidate in left:
            try:
                bound = match(item, candidate, bound, frozenset(), f"{where}[{i}]")
            except AssertionError:
                continue
            left.remove(candidate)
            break
        else:
            raise AssertionError(f"{where}: no item matches {item!r}")
    return bound


def localise(value: Any, replay: Replay) -> Any:
    """A JSON answer with the server's own absolute URLs made host-relative."""
    if isinstance(value, dict):
        return {k: localise(v, replay) for k, v in value.items()}
    if isinstance(value, list):
        return [localise(v, replay) for v in value]
    return replay.local(value)


class Replays:
    """Gives each test a server on which exactly the exchanges of its scenario before its own
    were played.

    The server a scenario's previous test used is used again when it has not gone past that
    point; otherwise (a test ran out of order, or an exchange failed and left the server in an
    unknown state) a freshly seeded server replays the scenario from the start.
    """

    def __init__(self) -> None:
        self._current: dict[str, Replay] = {}

    def before(self, scenario: str, index: int) -> Replay:
        """A replay that has played ``SCENARIOS[scenario][:index]``; AssertionError if one of
        them failed."""
        replay = self._current.get(scenario)
        if replay is None or replay.played > index:
            self.close(scenario)
            replay = self._current[scenario] = Replay(AlyxTestServer().start())
        while replay.played < index:
            name, exchange = SCENARIOS[scenario][replay.played]
            try:
                self.play(scenario, name, exchange)
            except AssertionError as exc:
                raise AssertionError(f"the earlier exchange {name} failed: {exc}") from exc
        return replay

    def play(self, scenario: str, name: str, exchange: dict[str, Any]) -> None:
        """Play the scenario's next exchange on its server and check the answer."""
        replay = self._current[scenario]
        assert SCENARIOS[scenario][replay.played][0] == name
        try:
            check_exchange(replay, name, exchange)
        except BaseException:
            self.close(scenario)
            raise
        replay.played += 1

    def close(self, scenario: str | None = None) -> None:
        """Stop the server of ``scenario`` (None: of every scenario)."""
        for key in [scenario] if scenario is not None else list(self._current):
            replay = self._current.pop(key, None)
            if replay is not None:
                replay.server.close()


@pytest.fixture(scope="module")
def replays() -> Iterator[Replays]:
    replays = Replays()
    yield replays
    replays.close()


def test_recordings_are_the_shared_contract() -> None:
    """The copy is byte-identical to the shared contract when that sits beside the repository."""
    names = sorted(p.name for p in RECORDINGS.iterdir())
    assert [n[:3] for n in names[:-1]] == [f"{i:02d}-" for i in range(1, 15)]
    assert names[-1] == "README.md"
    if SHARED.is_dir():
        assert names == sorted(p.name for p in SHARED.iterdir())
        for name in names:
            assert (RECORDINGS / name).read_bytes() == (SHARED / name).read_bytes(), name


def test_every_exchange_is_replayed() -> None:
    assert len(EXCHANGES) == 143
    assert len({name for name, _ in EXCHANGES}) == 143


@pytest.mark.parametrize(
    ("scenario", "index", "name", "exchange"),
    [
        (scenario, i, name, exchange)
        for scenario, exchanges in SCENARIOS.items()
        for i, (name, exchange) in enumerate(exchanges)
    ],
    ids=[name for exchanges in SCENARIOS.values() for name, _ in exchanges],
)
def test_exchange(
    replays: Replays, scenario: str, index: int, name: str, exchange: dict[str, Any]
) -> None:
    replays.before(scenario, index)
    replays.play(scenario, name, exchange)


@pytest.mark.parametrize(
    "names",
    [
        ["01-auth::auth.token.again", "05-sessions-create::sessions.create.defaults"],
        [f"{ALONE}::one-remote.search.subject"],
    ],
)
def test_exchanges_replay_in_any_order(replays: Replays, names: list[str]) -> None:
    """A test whose exchange needs earlier ones (the token, the session it reads) passes after
    the last exchange of its scenario was played, and alone: the replay starts again from a
    fresh server."""
    scenario = scenario_of(names[0])
    replays.before(scenario, len(SCENARIOS[scenario]) - 1)
    for name in sorted(names, reverse=True):
        index = [n for n, _ in SCENARIOS[scenario]].index(name)
        assert replays.before(scenario, index).played == index
        replays.play(scenario, name, SCENARIOS[scenario][index][1])


def check_exchange(replay: Replay, name: str, exchange: dict[str, Any]) -> None:
    """Send a recorded request and check the answer against the recorded one."""
    recorded = exchange["response"]
    if name == "13-schema-and-misc::throttled":
        _use_up_docs_limit(replay, exchange["request"])
    answer = replay.send(exchange["request"])
    assert answer.status_code == recorded["status"], answer.text[:500]
    assert answer.headers["Content-Type"] == recorded["content_type"]
    for header, value in recorded.get("headers", {}).items():
        if value == "<n>":
            assert int(answer.headers[header]) > 0
        else:
            assert replay.local(answer.headers[header]) == value
    if "json" in recorded:
        unordered = frozenset(exchange.get("unordered", {}))
        body = localise(answer.json(), replay)
        replay.bound = match(recorded["json"], body, replay.bound, unordered)
    elif "json_summary" in recorded:
        _check_summary(recorded["json_summary"], answer.json())
    elif name == "13-schema-and-misc::docs.html":
        assert '<redoc spec-url="/api/schema">' in answer.text
    else:
        assert answer.text == recorded["text"]


def _use_up_docs_limit(replay: Replay, request: dict[str, Any]) -> None:
    for _ in range(AlyxTestServer.DOCS_PER_MINUTE):
        if replay.send(request).status_code == 429:
            return


def _check_summary(summary: dict[str, Any], document: dict[str, Any]) -> None:
    if "get_parameters" in summary:  # an OpenAPI document: the parameters of the paths named
        assert document["openapi"] == summary["openapi"]
        assert len(document["paths"]) == summary["path_count"]
        for path, names in summary["get_parameters"].items():
            found = sorted(p["name"] for p in document["paths"][path]["get"]["parameters"])
            assert found == names, path
        return
    if "result_names" in summary:  # a list: its page keys and the names of its items
        assert [document[k] for k in ("count", "next", "previous")] == [
            summary[k] for k in ("count", "next", "previous")
        ]
        assert sorted(r["name"] for r in document["results"]) == summary["result_names"]
        return
    assert list(document) == summary["top_level_keys"]
    if "paths" in summary:
        assert document["openapi"] == summary["openapi"]
        assert document["info"] == summary["info"]
        assert len(document["paths"]) == summary["path_count"]
        methods = {path: sorted(ops) for path, ops in document["paths"].items()}
        assert methods == summary["paths"]


def test_matcher_rejects_what_differs() -> None:
    """The comparison used above is strict: type, value, keys and unbound placeholders."""
    uuid = "0f0e0d0c-0b0a-4909-8807-060504030201"
    bound = match(
        {"id": "<uuid:x>", "url": "/s/<uuid:x>"}, {"id": uuid, "url": f"/s/{uuid}"}, {}, frozenset()
    )
    assert bound == {"<uuid:x>": uuid}
    for expected, actual in [
        ({"a": True}, {"a": 1}),
        ({"a": 0.0}, {"a": 0}),
        ({"a": "x"}, {"a": "x", "b": 1}),
        ({"a": "/s/<uuid:x>"}, {"a": "/s/not-a-uuid"}),
        ([1, 2], [2, 1]),
    ]:
        with pytest.raises(AssertionError):
            match(expected, actual, {}, frozenset())
    assert match_multiset([1, 2], [2, 1], {}, "$") == {}
    with pytest.raises(AssertionError):
        match({"id": "<uuid:x>"}, {"id": uuid}, {"<uuid:x>": "another"}, frozenset())
