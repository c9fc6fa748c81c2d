"""The AlyxCredentials block, the retry condition and the tasks that wrap the library."""

import inspect
import re
from urllib.parse import urlsplit

import pytest
import requests
from prefect.client.schemas.objects import TaskRun
from prefect.states import Failed
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import ValidationError

from one_flows.alyx import (
    AlyxAuthError,
    AlyxNotFound,
    AlyxRequestError,
    AlyxServerError,
    AlyxTransientError,
)
from one_flows.prefect.blocks import AlyxCredentials, alyx_client
from one_flows.prefect.events import session_resource_id
from one_flows.prefect.retries import (
    MAX_RETRY_AFTER,
    SERVER_ERROR_RETRIES,
    RetrySettings,
    retry_if_transient,
)
from one_flows.prefect.targets import Target, registration_client
from one_flows.prefect.tasks import (
    create_or_fetch_session,
    register_session_files,
    register_water_administration,
    register_weight,
)


class TestAlyxCredentialsBlock(BlockStandardTestSuite):
    @pytest.fixture
    def block(self):
        return AlyxCredentials

    def test_has_a_valid_image(self, block):
        # The standard check downloads the logo, which needs the internet; offline, the URL is
        # checked to be an image pinned to a commit, as Prefect's own blocks pin theirs.
        url = urlsplit(block._logo_url)
        assert (url.scheme, url.netloc) == ("https", "raw.githubusercontent.com")
        assert re.fullmatch(r"/[\w.-]+/[\w.-]+/[0-9a-f]{40}/[\w./+-]+\.png", url.path)


def test_block_logs_in_to_alyx(alyx_server):
    credentials = AlyxCredentials(
        base_url=alyx_server.url + "/",
        username=alyx_server.username,
        password=alyx_server.password,
        read_timeout=10,
    )
    with credentials.get_client() as client:
        assert client.base_url == alyx_server.url
        assert client.timeout == (5.0, 10.0)
        assert [s["nickname"] for s in client.list_all("/subjects")] == ["algernon"]
    assert alyx_server.password not in repr(credentials)


def test_a_saved_block_is_loaded_by_name(prefect_api, alyx_server):
    AlyxCredentials(
        base_url=alyx_server.url, username=alyx_server.username, password=alyx_server.password
    ).save("test-alyx", overwrite=True)
    with alyx_client("test-alyx") as client:
        assert client.get("/subjects/algernon")["nickname"] == "algernon"
    with pytest.raises(ValueError, match="not both"):
        alyx_client("test-alyx", url=alyx_server.url)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"base_url": "alyx.example.org"}, "http"),
        ({"base_url": "https://alyx.example.org", "password": "x"}, "needs a username"),
        ({"base_url": "https://alyx.example.org", "read_timeout": 0}, "greater than 0"),
    ],
)
def test_block_refuses_bad_settings(fields, message):
    with pytest.raises(ValidationError, match=message):
        AlyxCredentials(**fields)


def _decide(exc: BaseException, run_count: int = 1, delays=0) -> bool:
    class _Task:
        retry_delay_seconds = delays

    run = TaskRun(flow_run_id=None, task_key="k", dynamic_key="0", run_count=run_count)
    return retry_if_transient(_Task(), run, Failed(data=exc))


def _transient(**kwargs) -> AlyxTransientError:
    return AlyxTransientError("GET /sessions → 503: busy", status=503, **kwargs)


def test_retry_condition_is_a_plain_function():
    # Prefect silently skips a retry_condition_fn that is a partial or a callable object.
    assert inspect.isfunction(retry_if_transient)
    assert create_or_fetch_session.retry_condition_fn is retry_if_transient
    assert register_session_files.retry_condition_fn is retry_if_transient


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (_transient(), True),
        (AlyxTransientError("GET /x → could not connect", may_have_run=False), True),
        (requests.ConnectionError("reset"), True),
        (requests.Timeout("slow"), True),
        (AlyxRequestError("POST /sessions → 400: bad", status=400), False),
        (AlyxAuthError("POST /auth-token → 400: no", status=400), False),
        (AlyxNotFound("GET /subjects/x → 404", status=404), False),
        (ValueError("a bug"), False),
    ],
)
def test_retry_condition_retries_transient_faults_only(exc, retried):
    assert _decide(exc) is retried


def test_a_server_error_is_retried_a_limited_number_of_times():
    error = AlyxServerError("POST /sessions → 500: oops", status=500)
    decisions = [_decide(error, run_count=n) for n in range(1, SERVER_ERROR_RETRIES + 3)]
    assert decisions == [True] * SERVER_ERROR_RETRIES + [False, False]


def test_retry_after_is_honoured_beyond_the_task_delay(monkeypatch):
    waited = []
    monkeypatch.setattr("one_flows.prefect.retries.time.sleep", waited.append)
    assert _decide(_transient(retry_after=30), run_count=2, delays=[1, 4, 16]) is True
    assert waited == [26.0]
    assert _decide(_transient(retry_after=2), run_count=1, delays=[10]) is True
    assert waited == [26.0, 0.0]
    assert _decide(_transient(retry_after=MAX_RETRY_AFTER + 1)) is False


def test_retry_settings_give_exponential_capped_delays():
    options = RetrySettings(retries=5, delay_seconds=2, max_delay_seconds=10).task_options()
    assert options["retries"] == 5
    assert options["retry_delay_seconds"] == [2, 4, 8, 10, 10]
    assert RetrySettings(retries=0).task_options()["retry_delay_seconds"] == 0


def test_target_choice(tmp_path, monkeypatch):
    assert Target.choose(None, None, tmp_path) == Target(cache_dir=tmp_path)
    assert Target.choose("lab-alyx", None, tmp_path) == Target(alyx="lab-alyx")
    assert Target.choose(None, tmp_path / "c", tmp_path) == Target(cache_dir=tmp_path / "c")
    monkeypatch.setenv("ALYX_URL", "https://alyx.example.org")
    assert Target.choose(None, None, tmp_path) == Target()


def test_a_client_dropped_from_the_flow_runs_cache_is_not_closed(tmp_path, sample_root):
    """A task may still be using a client the cache of recent clients lets go of."""
    session = next(sample_root.glob("*/Subjects/*/*/*"))
    first = registration_client(Target(cache_dir=tmp_path / "tables-0"))
    assert first.register_session(session).eid
    in_use = first._digest_cache()  # as a task hashing the session's files holds it
    for i in range(1, 9):
        registration_client(Target(cache_dir=tmp_path / f"tables-{i}"))
    assert registration_client(Target(cache_dir=tmp_path / "tables-0")) is not first
    hashed = next(p for p in session.rglob("*.npy"))
    in_use.put(hashed, hashed.stat(), "0" * 32)
    assert in_use.get(hashed, hashed.stat()) == "0" * 32


def test_one_api_default_database_is_never_chosen_for_writing(tmp_path, monkeypatch):
    """A ONE-api set-up (~/.one with a default database) does not make registration go there."""
    params = tmp_path / "home" / ".one"
    params.mkdir(parents=True)
    (params / ".caches").write_text('{"DEFAULT": "alyx.example.org"}')
    (params / ".alyx.example.org").write_text('{"ALYX_URL": "https://alyx.example.org"}')
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ALYX_URL", raising=False)
    assert Target.choose(None, None, tmp_path) == Target(cache_dir=tmp_path)
    with pytest.raises(ValidationError, match="not both"):
        Target(alyx="https://alyx.example.org", cache_dir=tmp_path)


def test_weight_and_water_tasks_record_animal_care(prefect_api, alyx_server, monkeypatch):
    monkeypatch.setenv("ALYX_LOGIN", alyx_server.username)
    monkeypatch.setenv("ALYX_PASSWORD", alyx_server.password)
    target = Target(alyx=alyx_server.url)
    weighing = register_weight(target, "algernon", 23.456789, "2026-01-05T10:00:00")
    water = register_water_administration(target, "algernon", 0.61234)
    assert weighing["weight"] == 23.46 and weighing["subject"] == "algernon"
    assert water["water_administered"] == 0.6123
    assert alyx_server.request_count("POST", "/weighings") == 1
    assert alyx_server.request_count("POST", "/water-administrations") == 1


def test_session_resource_ids_name_the_database():
    assert session_resource_id("e1", "alyx:https://alyx.example.org") == "alyx.session.e1"
    assert session_resource_id("e1", "local:/data") == "one.session.e1"
