"""Benchmarks of one-flows against its peers, measured in the same run on the same data.

Run them all with ``python -m benchmarks`` (``--help`` for options). Each module here measures one
kind of work and exposes ``NAME`` and ``run(ctx) -> list[Figure]``; ``core`` holds what they
share and ``_measure`` is the fresh-process runner behind every measurement.
"""

BENCHMARKS = (
    "hashing",
    "cache_tables",
    "queries",
    "flags",
    "registration",
    "prefect_flow",
    "cli_register",
    "remote",
)
"""Module names under ``benchmarks``, in the order they run."""
