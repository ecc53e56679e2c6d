"""The merged OpenAPI document says what each operation needs, when auth is on: the two
ways to send a token (``components.securitySchemes``) and, per operation, its scope (OpenAPI
3.1 lets a security requirement of any scheme name the roles it needs). With auth off the
document claims no security: the server asks for none."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from cmf_gateway.auth.scopes import AccessTable

SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "a token of `cmf-server token create`",
    },
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "any user name, the token as the password (`http://cmf:<token>@host`)",
    },
}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
REFUSALS = {
    "401": "No token, or one that is malformed, unknown, expired or revoked "
    "(`WWW-Authenticate` says how to send one)",
    "403": "The token's scope is not enough for this route",
    "429": "Too many requests from this token or address (`Retry-After` says when to retry)",
}


def security_of(scope: str | None) -> list[dict[str, list[str]]]:
    return [] if scope is None else [{"bearer": [scope]}, {"basic": [scope]}]


def with_access(document: dict[str, Any], table: AccessTable) -> dict[str, Any]:
    """``document`` with each operation's security, as ``table`` rules its path."""
    document.setdefault("components", {})["securitySchemes"] = SCHEMES
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method in METHODS and isinstance(operation, dict):
                rule = table.rule(method.upper(), path)
                operation["security"] = security_of(rule.scope)
                if rule.scope is not None:
                    operation["x-cmf-scope"] = rule.scope
                    _declare_refusals(operation)
    return document


def _declare_refusals(operation: dict[str, Any]) -> None:
    """The refusals, in the route's dialect: the body of its 422 (every route declares one,
    ``cmf_common.dialects.COMMON_ERRORS``) is the dialect's error body."""
    responses = operation.setdefault("responses", {})
    content = responses.get("422", {}).get("content")
    for status, description in REFUSALS.items():
        if status not in responses:
            responses[status] = {"description": description}
            if content is not None:
                responses[status]["content"] = content


def document_access(own: FastAPI, table: AccessTable) -> None:
    """Add the security of each operation to ``own``'s (merged) document, once."""
    generate = own.openapi
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not done:
            done.append(with_access(generate(), table))
        return done[0]

    own.openapi = openapi  # type: ignore[method-assign]
