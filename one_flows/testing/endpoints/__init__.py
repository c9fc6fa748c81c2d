"""The test server's endpoint handlers, one module per group of Alyx resources."""

from ..protocol import Route
from . import care, datasets, docs, reference, sessions, subjects

ROUTES: tuple[Route, ...] = (
    *reference.ROUTES,
    *subjects.ROUTES,
    *sessions.ROUTES,
    *datasets.ROUTES,
    *care.ROUTES,
    *docs.ROUTES,
)

__all__ = ["ROUTES"]
