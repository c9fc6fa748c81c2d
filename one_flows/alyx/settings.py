"""Where the client's URL and credentials come from.

Each setting is taken from the first source that has it:

1. the arguments given to the client;
2. the environment: `ALYX_URL`, `ALYX_LOGIN`, `ALYX_PASSWORD`, `ALYX_TOKEN`;
3. the parameter file that ONE-api keeps for that URL, when there is one. ONE-api 3 writes
   `~/.one/.<key>` (`%APPDATA%\\.one\\.<key>` on Windows), where the key is the URL without
   its scheme, lower-cased, other characters than letters, digits, `.`, `_` and `-` turned to
   `_` (`http://127.0.0.1:8000` → `.127.0.0.1_8000`). It holds `ALYX_URL`, `ALYX_LOGIN`, an
   optional `ALYX_PWD` and the cached tokens as `TOKEN: {login: {"token": ...}}`. With no URL
   anywhere else, the URL comes from the default client named in `~/.one/.caches`.

ONE-api's files are only read, never written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from one_flows.alyx.secret import Secret

logger = logging.getLogger("one_flows.alyx")

ENV_URL = "ALYX_URL"
ENV_LOGIN = "ALYX_LOGIN"
ENV_PASSWORD = "ALYX_PASSWORD"
ENV_TOKEN = "ALYX_TOKEN"


@dataclass(frozen=True)
class AlyxSettings:
    """A resolved Alyx URL (no trailing slash) and the credentials to use with it."""

    base_url: str
    username: str | None = None
    password: Secret | None = None
    token: Secret | None = None


def one_params_key(url: str) -> str:
    """The name ONE-api gives the parameter file of an Alyx URL, without the leading dot."""
    key = unicodedata.normalize("NFKC", url)
    key = re.sub(r"^https?://", "", key).strip("/")
    key = re.sub(r"[^.\w\s-]", "_", key.lower())
    return re.sub(r"[-\s]+", "-", key)


def one_params_dir(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The folder holding ONE-api's parameter files."""
    environ = os.environ if environ is None else environ
    if sys.platform in ("win32", "cygwin") and "APPDATA" in environ:
        return Path(environ["APPDATA"]) / ".one"
    return (home if home is not None else Path.home()) / ".one"


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logger.warning("ignoring ONE-api parameter file %s: %s", path, exc)
        return {}
    return content if isinstance(content, dict) else {}


def one_params(url: str, *, home: Path | None = None) -> dict[str, Any]:
    """The settings ONE-api keeps for the Alyx at ``url`` (its parameter file), or {}."""
    return _read_json(one_params_dir(home) / f".{one_params_key(_normalise_url(url))}")


def _normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the Alyx URL must be an http(s) URL with a host, not {url!r}")
    return url


def _first(*values: str | None) -> str | None:
    return next((value for value in values if value), None)


def _reveal(value: str | Secret | None) -> str | None:
    return value.reveal() if isinstance(value, Secret) else value


def resolve_settings(
    base_url: str | None = None,
    username: str | None = None,
    password: str | Secret | None = None,
    token: str | Secret | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> AlyxSettings:
    """Resolve the URL and credentials from arguments, then environment, then ONE-api's files.

    Raises
    ------
    ValueError
        No URL anywhere, or one that is not an http(s) URL.
    """
    environ = os.environ if environ is None else environ
    params_dir = one_params_dir(home, environ)

    url = _first(base_url, environ.get(ENV_URL))
    if url is None:
        default_key = _read_json(params_dir / ".caches").get("DEFAULT")
        if default_key:
            url = _read_json(params_dir / f".{default_key}").get("ALYX_URL")
    if not url:
        raise ValueError(
            f"no Alyx URL: pass base_url, set {ENV_URL}, or set up ONE-api for a database"
        )
    url = _normalise_url(url)

    username = _first(username, environ.get(ENV_LOGIN))
    password_text = _first(_reveal(password), environ.get(ENV_PASSWORD))
    token_text = _first(_reveal(token), environ.get(ENV_TOKEN))
    if not (username and (password_text or token_text)):
        one_params = _read_json(params_dir / f".{one_params_key(url)}")
        username = _first(username, one_params.get("ALYX_LOGIN"))
        password_text = _first(password_text, one_params.get("ALYX_PWD"))
        cached = (one_params.get("TOKEN") or {}).get(username or "") or {}
        token_text = _first(token_text, cached.get("token") if isinstance(cached, dict) else None)
    return AlyxSettings(
        base_url=url,
        username=username,
        password=Secret(password_text) if password_text else None,
        token=Secret(token_text) if token_text else None,
    )
