"""The gateway's /openapi.json: one document of every route of every service it routes to."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from cmf_gateway.openapi import merge_documents
from cmf_gateway.routing import LINEAGE, METADATA, route_table
from cmf_lineage.app import create_app as create_lineage_app
from cmf_lineage.settings import LineageSettings
from cmf_metadata.app import create_app as create_metadata_app
from cmf_metadata.settings import MetadataSettings


@pytest.fixture(scope="module")
def service_apps() -> dict[str, FastAPI]:
    """Two services' apps, not started: their routes are all a merge needs."""
    return {
        METADATA: create_metadata_app(MetadataSettings()),
        LINEAGE: create_lineage_app(LineageSettings()),
    }


def _operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, p) for p, operations in spec["paths"].items() for m in operations}


def test_the_merged_document_holds_every_route_of_every_service(
    service_apps: dict[str, FastAPI],
) -> None:
    table = route_table(service_apps)
    own = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}
    documents = {name: app.openapi() for name, app in service_apps.items()}
    merged = merge_documents(own, documents, table.resolve)
    every = set().union(*(_operations(d) for d in documents.values()))
    assert _operations(merged) == every
    ids = [o["operationId"] for ops in merged["paths"].values() for o in ops.values()]
    assert len(ids) == len(set(ids))
    for name, document in documents.items():
        for schema in document.get("components", {}).get("schemas", {}):
            assert schema in merged["components"]["schemas"], (name, schema)


def test_schemas_two_services_name_alike_but_define_apart_are_kept_apart() -> None:
    def document(path: str, kind: str) -> dict[str, Any]:
        ref = {"$ref": "#/components/schemas/Answer"}
        operation = {"responses": {"200": {"content": {"application/json": {"schema": ref}}}}}
        return {
            "paths": {path: {"get": operation}},
            "components": {"schemas": {"Answer": {"type": kind}}},
        }

    merged = merge_documents(
        {"paths": {}},
        {"a": document("/a", "string"), "b": document("/b", "integer")},
        lambda path: path.strip("/"),
    )
    schemas = merged["components"]["schemas"]
    assert schemas == {"a__Answer": {"type": "string"}, "b__Answer": {"type": "integer"}}
    b_ref = merged["paths"]["/b"]["get"]["responses"]["200"]["content"]["application/json"]
    assert b_ref["schema"] == {"$ref": "#/components/schemas/b__Answer"}


def test_a_path_another_service_answers_is_not_documented_under_this_one() -> None:
    document: dict[str, Any] = {"paths": {"/x": {"get": {"responses": {}}}}}
    merged = merge_documents({"paths": {}}, {"a": document}, lambda _: "b")
    assert merged["paths"] == {}
