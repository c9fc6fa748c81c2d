"""The test server's endpoint handlers, one module per group of Alyx resources."""

from ..protocol import Route
from . import cache, care, datasets, docs, reference, sessions, subjects

ROUTES: tuple[Route, ...] = (
    *reference.ROUTES,
    *subjects.ROUTES,
    *sessions.ROUTES,
    *datasets.ROUTES,
    *care.ROUTES,
    *docs.ROUTES,
    *cache.ROUTES,
)

__all__ = ["ROUTES"]
