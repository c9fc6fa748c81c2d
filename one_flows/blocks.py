"""Prefect blocks of one-flows: the credentials of an Alyx database.

Register the block types with a Prefect server once (a server with one-flows installed also
registers them by itself, through the ``prefect.collections`` entry point)::

    prefect block register -m one_flows.blocks

Flows take the name of a saved block as a parameter. Without a block, the client is configured
from the environment (``ALYX_URL``, ``ALYX_LOGIN``, ``ALYX_PASSWORD``, ``ALYX_TOKEN``) or from
ONE-api's parameter files; see `one_flows.alyx.settings`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator, model_validator

from one_flows.alyx import AlyxClient

__all__ = ["AlyxCredentials", "alyx_client"]


class AlyxCredentials(Block):
    """The URL of an Alyx database and the credentials to log in to it.

    Give a user name with a password (a token is then fetched on first use, and fetched again
    if the server forgets it), or an API token.

    Example:
        Load saved credentials and query the database:
        ```python
        from one_flows.blocks import AlyxCredentials

        alyx_credentials = AlyxCredentials.load("BLOCK_NAME")
        with alyx_credentials.get_client() as alyx:
            subjects = alyx.list_all("/subjects")
        ```
    """

    _block_type_name = "Alyx Credentials"
    _block_type_slug = "alyx-credentials"
    _logo_url = "https://raw.githubusercontent.com/cortex-lab/alyx/2b60a5dab0e1deab688e7271a2125cfa74ca04af/alyx/ibl/static/ibl/favicon.png"
    _documentation_url = "https://int-brain-lab.github.io/ONE/_autosummary/one.webclient.html#one.webclient.AlyxClient"

    base_url: str = Field(
        default=...,
        title="Alyx URL",
        description="The Alyx server, e.g. https://alyx.example.org.",
    )
    username: str | None = Field(
        default=None, description="The user to log in as; needed with a password."
    )
    password: SecretStr | None = Field(
        default=None, description="The user's password, exchanged for a token on first use."
    )
    token: SecretStr | None = Field(
        default=None, description="An API token, used as is instead of logging in."
    )
    connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a connection to the server."
    )
    read_timeout: float = Field(
        default=60.0, gt=0, description="Seconds to wait for each read of a response."
    )
    verify: bool = Field(default=True, description="Whether to check the server's TLS certificate.")
    max_requests_per_minute: int | None = Field(
        default=300,
        gt=0,
        description="Requests per minute this client sends at most; empty for no limit.",
    )

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the Alyx URL must be an http(s) URL with a host, not {value!r}")
        return value

    @model_validator(mode="after")
    def _check_login(self) -> AlyxCredentials:
        if self.password is not None and not self.username:
            raise ValueError("a password needs a username to log in with")
        return self

    def get_client(self, **options: Any) -> AlyxClient:
        """A new `AlyxClient` for this server; `options` are passed on to it (e.g. retries)."""
        return AlyxClient(
            self.base_url,
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            token=self.token.get_secret_value() if self.token else None,
            timeout=(self.connect_timeout, self.read_timeout),
            verify=self.verify,
            max_requests_per_minute=self.max_requests_per_minute,
            **options,
        )


def alyx_client(block_name: str | None = None, url: str | None = None) -> AlyxClient:
    """A client from the saved `AlyxCredentials` block `block_name`, else for `url`.

    With neither, the URL and credentials come from the environment or ONE-api's files.
    """
    if block_name:
        if url:
            raise ValueError("give the name of an AlyxCredentials block or a URL, not both")
        return AlyxCredentials.load(block_name).get_client()
    return AlyxClient(url)
