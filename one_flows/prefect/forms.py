"""How the flows' parameters show in Prefect's forms: a title each, and their bounds."""

from __future__ import annotations

from typing import Any

from pydantic import Field

__all__ = ["form"]


def form(title: str, **bounds: float) -> Any:
    """The ``Annotated`` metadata of a flow parameter: its title in the form (the flow's
    docstring gives its description) and the bounds its value keeps to, there and from code.

    A parameter that may be None from code takes ``SkipJsonSchema[None]`` in its type, so that
    the form has no "None" branch for it: left empty, it is not sent.
    """
    return Field(json_schema_extra={"title": title}, **bounds)
