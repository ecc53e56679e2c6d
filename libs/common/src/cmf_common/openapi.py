"""What a route that reads its own request or builds its own response declares, so that
``/openapi.json`` shows what it really takes and answers (docs/api.md, "The OpenAPI"). The
error statuses are the dialect's (:func:`cmf_common.dialects.errors`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

BINARY = {"type": "string", "format": "binary"}


def answer(
    schema: dict[str, Any] | type[BaseModel],
    media_type: str = "application/json",
    description: str = "Success",
    **extra: Any,
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's 200: its body's JSON Schema (or a pydantic model's, which
    FastAPI shows in the route's own media type) in ``media_type``; ``extra`` (``headers=``)
    as OpenAPI words it."""
    body: dict[str, Any] = {"description": description, **extra}
    if isinstance(schema, dict):
        body["content"] = {media_type: {"schema": schema}}
    else:
        body["model"] = schema
    return {200: body}


def json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra=`` for a route that parses its JSON body itself."""
    schema = model.model_json_schema()
    if "$defs" in schema:  # their references would point at the document's root
        raise ValueError(f"{model.__name__}: a body of nested models needs a body parameter")
    return {
        "requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}
    }


def multipart_body(field: str, description: str) -> dict[str, Any]:
    """``openapi_extra=`` for an upload: a ``multipart/form-data`` body with one file part."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [field],
                        "properties": {field: {**BINARY, "description": description}},
                    },
                    "encoding": {field: {"contentType": "application/octet-stream"}},
                }
            },
        }
    }
