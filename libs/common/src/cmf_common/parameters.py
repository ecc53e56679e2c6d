"""Every path and query parameter is checked at the edge, before any route runs: a NUL byte
(PostgreSQL's text cannot hold one) and an integer outside int64 (what every id column and
query argument is) are a 422 in the route's dialect, and nothing is read or stored.

One app-wide dependency (:func:`check_parameters`, installed by
``cmf_common.service.service_app``) does it for every route, so a new route is covered without
a per-route check. It looks at every raw query and path value for NUL, and at the values of
the parameters a route declares as integers for their range. A NUL inside a JSON body is the
body's own validation's (per route).

A parameter whose route answers such values in terms of its own (a file name's 400
``invalid_file_name``, upstream's 404 for a model id no artifact can have) carries
:data:`OWN_CHECKS` in its ``Annotated`` type and is left to it.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from cmf_common.errors import Invalid

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class _OwnChecks:
    """``Annotated[str, Query(...), OWN_CHECKS]``: the route checks this value itself."""

    def __repr__(self) -> str:
        return "OWN_CHECKS"


OWN_CHECKS = _OwnChecks()


@dataclass(frozen=True)
class _Checked:
    """A route's parameters by what is checked of them: ``(location, name)`` pairs."""

    own: frozenset[tuple[str, str]]  # left to the route
    integers: tuple[tuple[str, str], ...]  # checked for the int64 range


# route id -> its parameters; routes live as long as their app
_CHECKED: dict[int, _Checked] = {}


def _is_integer(annotation: Any) -> bool:
    if annotation is int:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, typing.Annotated):
        return any(_is_integer(a) for a in typing.get_args(annotation))
    return False


def _checked(route: APIRoute | None) -> _Checked:
    if route is None:
        return _Checked(frozenset(), ())
    found = _CHECKED.get(id(route))
    if found is None:
        fields = _walk(route.dependant)
        own = frozenset(key for key, field in fields if OWN_CHECKS in field.field_info.metadata)
        integers = sorted(
            {key for key, field in fields if _is_integer(field.field_info.annotation)} - own
        )
        found = _CHECKED[id(route)] = _Checked(own, tuple(integers))
    return found


def _walk(dependant: Dependant) -> list[tuple[tuple[str, str], Any]]:
    """The path and query parameters of ``dependant`` and of every dependency it takes."""
    found = [
        ((location, field.alias), field)
        for location, fields in (("path", dependant.path_params), ("query", dependant.query_params))
        for field in fields
    ]
    for dependency in dependant.dependencies:
        found.extend(_walk(dependency))
    return found


def _out_of_range(value: str) -> bool:
    try:
        number = int(value.strip())
    except ValueError:
        return False  # not an integer at all: the route's own validation says so
    return not INT64_MIN <= number <= INT64_MAX


async def check_parameters(request: Request) -> None:
    """A NUL byte in a path or query value raises :class:`~cmf_common.errors.Invalid` (a 422
    ``invalid_parameter``, as the routes that checked NUL themselves answered it); an integer
    parameter outside int64 raises ``RequestValidationError``, as a declared bound does. Both
    are answered in the route's dialect."""
    route = request.scope.get("route")
    checked = _checked(route if isinstance(route, APIRoute) else None)
    values: dict[str, list[tuple[str, str]]] = {
        "path": [(k, v) for k, v in request.path_params.items() if isinstance(v, str)],
        "query": request.query_params.multi_items(),
    }
    for location, pairs in values.items():
        for name, value in pairs:
            if ("\x00" in value or "\x00" in name) and (location, name) not in checked.own:
                raise Invalid(f"{name} must not contain NUL characters", code="invalid_parameter")
    for location, name in checked.integers:
        raw = (
            [str(request.path_params.get(name, ""))]
            if location == "path"
            else request.query_params.getlist(name)
        )
        if any(_out_of_range(value) for value in raw):  # as a pydantic bound answers it
            message = f"Input should be between {INT64_MIN} and {INT64_MAX}"
            raise RequestValidationError(
                [{"type": "int64_range", "loc": (location, name), "msg": message}]
            )


# What the check above refuses, as JSON Schema: no NUL in a string, an integer within int64.
NO_NUL = "^[^\\u0000]*$"


def _constrain(schema: dict[str, Any]) -> None:
    for option in schema.get("anyOf", ()):
        _constrain(option)
    kind = schema.get("type")
    if kind == "string" and not {"pattern", "enum", "const"} & schema.keys():
        schema["pattern"] = NO_NUL
    elif kind == "integer":
        schema.setdefault("minimum", INT64_MIN)
        schema.setdefault("maximum", INT64_MAX)
    elif kind == "array" and isinstance(schema.get("items"), dict):
        _constrain(schema["items"])


def _not_null(schema: dict[str, Any]) -> None:
    """An optional parameter's ``anyOf: [X, null]`` as ``X``: a parameter is absent or a
    string on the wire, never JSON's null (a client that sent the text ``null`` would send a
    value, not none)."""
    options = [o for o in schema.get("anyOf", ()) if o.get("type") != "null"]
    if "anyOf" in schema and len(options) == 1:
        del schema["anyOf"]
        schema.update({**options[0], **schema})
    if schema.get("default", ...) is None:
        del schema["default"]


def document_parameter_checks(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (an app's OpenAPI) with what :func:`check_parameters` refuses of every path
    and query parameter said in its schema, so the documented parameters are the accepted ones."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                if "schema" not in parameter:
                    continue
                _not_null(parameter["schema"])
                if parameter.get("in") in ("path", "query"):
                    _constrain(parameter["schema"])
    return document
