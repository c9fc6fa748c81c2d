"""one-flows: get experiment sessions and data files into Alyx with Prefect; query them with ONE.

`import one_flows` does not import Prefect: the Prefect block is loaded on first access, so
`prefect block register -m one_flows` finds it while the library stays usable without Prefect.
"""

from typing import Any

__version__ = "0.1.0"

_PREFECT_MEMBERS = ("AlyxCredentials",)


def __getattr__(name: str) -> Any:
    if name in _PREFECT_MEMBERS:
        from one_flows.prefect import blocks

        return getattr(blocks, name)
    raise AttributeError(f"module 'one_flows' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), *_PREFECT_MEMBERS]
