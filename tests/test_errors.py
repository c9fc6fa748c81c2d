"""One error tree: every exception class of the package derives from OneFlowsError, the tree in
`one_flows.errors` draws each of them, and `is_outage` tells the infrastructure's failures from a
session's own."""

import importlib
import inspect
import pkgutil
import re

import httpx
import pytest
import requests

import one_flows
from one_flows import alyx, errors
from one_flows.alyx.errors import error_from_exception
from one_flows.cache import TablesFolderMissing, TablesLockError
from one_flows.errors import OneFlowsError, is_outage
from one_flows.flags import FlagContentError
from one_flows.registration import MemberNotFound, SessionFailed, SubjectNotFound
from one_flows.targets import ProtectedDatasets, RegistrationRefused, TargetUnavailable


def _exception_classes() -> dict[str, type[BaseException]]:
    """The public exception classes defined anywhere in one_flows, by name.

    ``one_flows.testing`` is left out: its errors are the test server's own (``ApiError`` becomes
    an HTTP answer inside the server, ``PostgresServerError`` a fixture that could not start a
    database) and never reach a caller of the library. Private classes (``_Aborted``) are
    signals caught in the module that raises them.
    """
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(one_flows.__path__, "one_flows."):
        if info.name.startswith("one_flows.testing"):
            continue
        module = importlib.import_module(info.name)
        for name, member in vars(module).items():
            if (
                inspect.isclass(member)
                and issubclass(member, BaseException)
                and member.__module__ == info.name
                and not name.startswith("_")
            ):
                found[name] = member
    return found


def test_every_exception_class_of_the_package_is_a_one_flows_error():
    classes = _exception_classes()
    assert len(classes) > 30  # the walk did find the package's errors
    strays = sorted(
        f"{cls.__module__}.{name}"
        for name, cls in classes.items()
        if not issubclass(cls, OneFlowsError)
    )
    assert strays == []


def test_the_tree_in_one_flows_errors_draws_every_error():
    drawn = set(re.findall(r"[├└]── (\w+)", errors.__doc__)) | {"OneFlowsError"}
    classes = set(_exception_classes())
    assert classes - drawn == set(), "add these to the tree in one_flows/errors.py"
    assert drawn - classes == set(), "the tree in one_flows/errors.py names classes that are gone"


def test_the_tree_draws_each_class_under_its_base():
    """Each name is drawn under its first base class (the indentation says which)."""
    classes = _exception_classes()
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = [(-1, "OneFlowsError")]
    for line in errors.__doc__.splitlines():
        match = re.search(r"[├└]── (\w+)", line)
        if not match:
            continue
        depth = match.start()
        while stack[-1][0] >= depth:
            stack.pop()
        parents[match.group(1)] = stack[-1][1]
        stack.append((depth, match.group(1)))
    wrong = {
        name: (parent, classes[name].__bases__[0].__name__)
        for name, parent in parents.items()
        if classes[name].__bases__[0].__name__ != parent
    }
    assert wrong == {}


def _refused() -> requests.ConnectionError:
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    reason = NewConnectionError(None, "Connection refused")
    return requests.ConnectionError(MaxRetryError(None, "/x", reason))


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        # The infrastructure's: credentials, reachability, server failures.
        (alyx.AlyxAuthError("POST /auth-token → 400: bad password", status=400), True),
        (alyx.AlyxAuthError("GET /x → 403: Authentication credentials were not provided."), True),
        (error_from_exception(_refused(), "GET", "/x", "http://a/x"), True),
        (alyx.AlyxTransientError("GET /x → 503: busy", status=503), True),
        (alyx.AlyxServerError("POST /sessions → 500: oops", status=500), True),
        (alyx.AlyxUnavailable("GET /x → 200: text/html instead of JSON"), True),
        (TargetUnavailable("alyx:http://a", "unreachable", "refused", "check the URL"), True),
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        # ... raised bare by requests, or by httpx talking to the Prefect API.
        (_refused(), True),
        (requests.ReadTimeout(), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("timed out"), True),
        # Cache tables that cannot be found or locked: the file system's fault.
        (TablesFolderMissing("/data/tables: no such folder"), True),
        (TablesLockError("/data/tables: flock not supported"), True),
        # The session's own: its data, its names, its files, its flag.
        (alyx.AlyxRequestError("POST /sessions → 400: lab: unknown", status=400), False),
        (alyx.AlyxNotFound("GET /subjects/x → 404", status=404), False),
        (SubjectNotFound("KS099"), False),
        (MemberNotFound("nobody", "users"), False),
        (RegistrationRefused("POST /register-file → 400: bad", status=400), False),
        (ProtectedDatasets({"alf/a.b.npy": [("", True)]}), False),
        (FlagContentError("/d/s/create_me.flag", 1, "../x", "'..' is refused"), False),
        (SessionFailed("/d/s: 2 files refused"), False),
        (ValueError("not a session folder"), False),
        (requests.HTTPError("400 Client Error"), False),
        (
            httpx.HTTPStatusError("400", request=httpx.Request("GET", "http://a"), response=None),
            False,
        ),
        (alyx.AlyxError("any other failure"), False),
    ],
)
def test_is_outage_tells_the_infrastructure_from_the_session(exc, outage):
    assert is_outage(exc) is outage
