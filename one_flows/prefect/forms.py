"""How the flows' parameters show in Prefect's forms: a title each, their bounds, no null.

A parameter that may be None from code takes ``SkipJsonSchema[None]`` in its type, so that the
form offers no "None" branch for it ("Property is type 'None'"). Its default of None must not
be in the schema either: the form would fill the field with null and then refuse to submit it
("None is not of type 'string'"). `no_null_defaults` takes those defaults out of a flow's
schema, and `no_null_default` out of a model field's.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, TypeVar

from prefect import Flow
from prefect.utilities.callables import parameter_schema
from pydantic import BaseModel, Field
from pydantic_core import PydanticUndefined

__all__ = ["form", "no_null_default", "no_null_defaults"]

F = TypeVar("F", bound=Flow)


def form(title: str, **bounds: float) -> Any:
    """The ``Annotated`` metadata of a flow parameter: its title in the form (the flow's
    docstring gives its description, from a Google ``Args:`` section: the only style Prefect's
    ``parameter_docstrings`` reads) and the bounds its value keeps to, there and from code."""
    return Field(json_schema_extra={"title": title}, **bounds)


def no_null_defaults(flow: F) -> F:
    """``flow``, whose parameter schema (its form, and its deployments') leaves out defaults of
    None and the None values of a model's default: left empty, such a field is not sent, and
    the flow's own default applies. Calls and their validation are unchanged.

    Prefect reads a flow's schema from its signature (``inspect.signature(flow)``): the flow
    is given one in which such a parameter defaults to a factory, which the schema leaves out.
    """
    signature = inspect.signature(flow.fn, eval_str=True)
    parameters = []
    for parameter in signature.parameters.values():
        if parameter.default is None:
            parameter = parameter.replace(
                annotation=Annotated[parameter.annotation, Field(default_factory=_none)],
                default=PydanticUndefined,
            )
        elif isinstance(parameter.default, BaseModel):
            dumped = parameter.default.model_dump(mode="json", exclude_none=True)
            parameter = parameter.replace(default=dumped)
        parameters.append(parameter)
    flow.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    flow.parameters = parameter_schema(flow)
    return flow


def no_null_default(schema: dict[str, Any]) -> None:
    """The ``json_schema_extra`` of a model field that defaults to None: no default in its
    schema, so that the form leaves it empty."""
    if schema.get("default", ...) is None:
        del schema["default"]


def _none() -> None:
    return None
