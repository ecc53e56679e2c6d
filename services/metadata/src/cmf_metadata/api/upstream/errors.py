"""The envelope as an error dialect: the routes of upstream's v1 generation declare it with
``APIRouter(route_class=EnvelopeRoute)``, and the app's error handlers answer their errors in
it (``cmf_common.dialects``). Unknown paths and methods under a v1 prefix take it too, as
their prefix owner's dialect.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from cmf_common.dialects import Dialect, DialectRoute
from cmf_common.errors import DomainError
from cmf_metadata.api.upstream import envelope


class EnvelopeDialect(Dialect):
    """Upstream's ``{status, code, data, message, errors, meta}``, sent with HTTP status
    ``code`` (upstream's exception handlers)."""

    name = "upstream-v1"

    def domain_error(self, exc: DomainError) -> JSONResponse:
        return envelope.error(exc.detail, exc.status)

    def invalid_request(self, errors: list[dict[str, Any]]) -> JSONResponse:
        return envelope.validation_error(errors)

    def http_error(self, status: int, detail: Any, headers: dict[str, str]) -> JSONResponse:
        return envelope.error(str(detail), status, headers=headers)

    def internal_error(self) -> JSONResponse:
        return envelope.error(envelope.INTERNAL_ERROR, 500)


ENVELOPE = EnvelopeDialect()


class EnvelopeRoute(DialectRoute):
    dialect = ENVELOPE
