"""One OpenAPI document for the whole server: the gateway's own routes (health) and every route
of every service it routes to, as each service's app documents them.

Nothing here knows a service: the document is merged from whatever services the gateway is
built with (``create_gateway``), so a new service's routes appear when it is mounted. A route
is listed under the service the gateway sends its path to (the route table's owner), so a
route another service's shadows is not documented as if it answered. Component schemas of one
name are one schema when the services agree on it; when two differ, each service's copy is
renamed ``<service>__<name>`` and its references follow.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI

from cmf_common.dialects import RouteTable

Document = dict[str, Any]
REF_PREFIX = "#/components/schemas/"


def _renamed_refs(node: Any, renames: Mapping[str, str]) -> Any:
    """``node`` with every ``$ref`` to a renamed schema pointing at its new name."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
                name = value.removeprefix(REF_PREFIX)
                out[key] = REF_PREFIX + renames.get(name, name)
            else:
                out[key] = _renamed_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_renamed_refs(item, renames) for item in node]
    return node


def merge_documents(
    own: Document, services: Mapping[str, Document], owner_of: Callable[[str], str | None]
) -> Document:
    """``own`` with the paths, schemas and tags of each of ``services`` (``{name: document}``)
    added; a service's path goes in only when ``owner_of`` says the gateway sends it there."""
    merged = copy.deepcopy(own)
    paths: dict[str, Any] = merged.setdefault("paths", {})
    schemas: dict[str, Any] = merged.setdefault("components", {}).setdefault("schemas", {})
    tags: list[dict[str, Any]] = merged.setdefault("tags", [])
    bodies: dict[str, list[Any]] = {}  # schema name -> its distinct bodies
    for document in (own, *services.values()):
        for schema, body in document.get("components", {}).get("schemas", {}).items():
            if body not in bodies.setdefault(schema, []):
                bodies[schema].append(body)
    for name, document in services.items():
        own_schemas = document.get("components", {}).get("schemas", {})
        renames = {schema: f"{name}__{schema}" for schema in own_schemas if len(bodies[schema]) > 1}
        for schema, body in own_schemas.items():
            schemas.setdefault(renames.get(schema, schema), _renamed_refs(body, renames))
        for path, operations in document.get("paths", {}).items():
            if path not in paths and owner_of(path) in (name, None):
                paths[path] = _renamed_refs(operations, renames)
        known = {tag["name"] for tag in tags}
        tags.extend(tag for tag in document.get("tags", []) if tag["name"] not in known)
    if not tags:
        merged.pop("tags")
    if not schemas:
        merged["components"].pop("schemas")
    return merged


def install_merged_openapi(own: FastAPI, apps: Mapping[str, FastAPI], table: RouteTable) -> None:
    """Serve the merged document at ``own``'s ``/openapi.json`` (and so in ``/docs``); it is
    built on the first request, once every route is in place, and kept."""
    built: list[Document] = []
    own_openapi = own.openapi

    def openapi() -> Document:
        if not built:
            documents = {name: app.openapi() for name, app in apps.items()}
            built.append(merge_documents(own_openapi(), documents, table.resolve))
        return built[0]

    own.openapi = openapi  # type: ignore[method-assign]
