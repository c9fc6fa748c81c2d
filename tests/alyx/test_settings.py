"""Settings come from arguments, then the environment, then the files ONE-api writes."""

import json
import logging

import one.params
import pytest
from hypothesis import given
from hypothesis import strategies as st

from one_flows.alyx import Secret
from one_flows.alyx.settings import AlyxSettings, one_params_dir, one_params_key, resolve_settings

URL = "http://127.0.0.1:8123"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home folder, for ONE-api and for us."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("ALYX_URL", "ALYX_LOGIN", "ALYX_PASSWORD", "ALYX_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def one_api_saves(url, **extra):
    """Let ONE-api write its parameter file for `url`, with `extra` keys such as TOKEN."""
    one.params.setup(client=url, silent=True, username="test_user")
    params = one.params.get(client=url, silent=True)
    for key, value in extra.items():
        params = params.set(key, value)
    one.params.save(params, url)


def test_arguments_only(home):
    settings = resolve_settings(f"{URL}/", "me", "pw", None)
    assert settings == AlyxSettings(URL, "me", Secret("pw"), None)


def test_environment_when_no_arguments(home, monkeypatch):
    monkeypatch.setenv("ALYX_URL", "https://alyx.example.org")
    monkeypatch.setenv("ALYX_LOGIN", "env_user")
    monkeypatch.setenv("ALYX_PASSWORD", "env_pw")
    monkeypatch.setenv("ALYX_TOKEN", "env_token")
    settings = resolve_settings()
    assert settings == AlyxSettings(
        "https://alyx.example.org", "env_user", Secret("env_pw"), Secret("env_token")
    )


def test_arguments_win_over_the_environment(home, monkeypatch):
    monkeypatch.setenv("ALYX_URL", "https://other.example.org")
    monkeypatch.setenv("ALYX_LOGIN", "env_user")
    settings = resolve_settings(URL, "arg_user", password=Secret("pw"))
    assert (settings.base_url, settings.username) == (URL, "arg_user")


def test_environment_wins_over_one_api_files(home, monkeypatch):
    one_api_saves(URL, TOKEN={"test_user": {"token": "file_token"}})
    monkeypatch.setenv("ALYX_TOKEN", "env_token")
    assert resolve_settings(URL).token == Secret("env_token")


def test_login_and_cached_token_from_the_file_one_api_wrote(home):
    one_api_saves(URL, TOKEN={"test_user": {"token": "abc123"}})
    settings = resolve_settings(URL)
    assert settings == AlyxSettings(URL, "test_user", None, Secret("abc123"))


def test_a_token_cached_for_another_user_is_not_used(home):
    one_api_saves(URL, TOKEN={"test_user": {"token": "abc123"}})
    settings = resolve_settings(URL, username="someone_else")
    assert (settings.username, settings.token) == ("someone_else", None)


def test_a_password_stored_in_the_one_api_file(home):
    one_api_saves(URL, ALYX_PWD="stored")
    assert resolve_settings(URL).password == Secret("stored")


def test_the_default_database_of_one_api_when_no_url_is_given(home):
    one_api_saves("https://alyx.example.org:8443", TOKEN={"test_user": {"token": "t"}})
    settings = resolve_settings()
    assert settings == AlyxSettings("https://alyx.example.org:8443", "test_user", None, Secret("t"))


def test_no_url_anywhere(home):
    with pytest.raises(ValueError, match="no Alyx URL"):
        resolve_settings()


@pytest.mark.parametrize("url", ["alyx.example.org", "ftp://alyx.example.org", "https://"])
def test_urls_that_are_not_http_are_refused(home, url):
    with pytest.raises(ValueError, match="http"):
        resolve_settings(url)


def test_a_broken_one_api_file_is_ignored_with_a_warning(home, caplog):
    one_params_dir().mkdir()
    path = one_params_dir() / f".{one_params_key(URL)}"
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="one_flows.alyx"):
        settings = resolve_settings(URL)
    assert settings == AlyxSettings(URL)
    assert str(path) in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "https://alyx.internationalbrainlab.org/",
        "https://Alyx.Example.org/alyx/",
        "http://[::1]:9000",
    ],
)
def test_we_read_the_file_one_api_writes_for_a_url(home, url):
    one_api_saves(url)
    path = one_params_dir() / f".{one_params_key(url)}"
    assert json.loads(path.read_text())["ALYX_URL"] == url


@given(
    st.sampled_from(["", "http://", "https://", "HTTP://"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40),
)
def test_file_key_agrees_with_one_api(scheme, rest):
    assert one_params_key(scheme + rest) == one.params._key_from_url(scheme + rest)
