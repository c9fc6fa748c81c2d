"""one-flows: get experiment sessions and data files into Alyx with Prefect; query them with ONE.

Entry points
------------
One
    ONE-api's query API (``search``, ``list_datasets``, ``load_object``, ...) over local ONE
    cache tables or an Alyx database and its data server.
RegistrationClient
    ONE-api's ``RegistrationClient``: create sessions and register their files, to Alyx or to
    local cache tables, with an outcome per file.
AlyxClient
    Authenticated REST requests to Alyx, with pagination, timeouts, retries and a rate limit.
AlyxCredentials
    The Prefect block that names an Alyx database and how to log in (imports Prefect).
OneFlowsError
    The root of every error one-flows raises; `one_flows.errors` draws the whole tree.

Layers
------
Each package imports only from the ones above it; everything above `one_flows.prefect` works
without Prefect::

    one_flows.errors        OneFlowsError and the whole error tree
    one_flows.alf           ALF paths: the grammar, parsers and composers, as ONE-api's one.alf
    one_flows.hashing       streaming, parallel md5 with a persistent digest cache
    one_flows.walk          what a session folder is, and how every walker lists a data root
    one_flows.alyx          the Alyx REST client and its error taxonomy
    one_flows.testing       an Alyx-compatible HTTP server for tests, with fault injection
    one_flows.flags         create_me.flag files: find, claim, complete or fail them
    one_flows.cache         ONE cache tables: build, update, read, write
    one_flows.targets       where registration writes: an Alyx database or local cache tables
    one_flows.registration  RegistrationClient: sessions and their files, with outcomes
    one_flows.one           One: ONE-api's query API over cache tables or Alyx
    one_flows.runs          what a registration run did to each flagged session
    one_flows.prefect       the block, the step tasks and the flows
    one_flows.cli           the ``one-flows`` command

``import one_flows`` is cheap and does not import Prefect: the entry points are imported on
first access, so ``prefect block register -m one_flows`` still finds the block.
"""

import typing as _typing

from one_flows.errors import OneFlowsError

if _typing.TYPE_CHECKING:
    from one_flows.alyx import AlyxClient
    from one_flows.one import One
    from one_flows.prefect import AlyxCredentials
    from one_flows.registration import RegistrationClient

__version__ = "0.1.0"

__all__ = ["AlyxClient", "AlyxCredentials", "One", "OneFlowsError", "RegistrationClient"]

_LAZY = {
    "AlyxClient": "one_flows.alyx",
    "AlyxCredentials": "one_flows.prefect",
    "One": "one_flows.one",
    "RegistrationClient": "one_flows.registration",
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'one_flows' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
