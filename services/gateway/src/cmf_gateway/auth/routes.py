"""``/api/native/v1/tokens``: the tokens, for an ``admin`` token (docs/access.md). A token's
text is in the answer that creates it and nowhere ever after."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cmf_common.dialects import ProblemRoute, errors
from cmf_common.errors import Invalid, NotFound
from cmf_gateway.auth.store import TokenStore
from cmf_gateway.auth.tokens import ID, TokenRecord, parse_expiry

Scope = Literal["read", "write", "admin"]


class TokenOut(BaseModel):
    id: str
    name: str
    scope: Scope
    pipeline_prefix: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(
        description="when it was last used, written every few seconds (TOKEN_LAST_USE_FLUSH_S)"
    )
    state: Literal["active", "expired", "revoked"]

    @classmethod
    def of(cls, record: TokenRecord) -> TokenOut:
        return cls(
            id=record.id,
            name=record.name,
            scope=record.scope,  # type: ignore[arg-type]
            pipeline_prefix=record.pipeline_prefix,
            created_at=record.created_at,
            expires_at=record.expires_at,
            revoked_at=record.revoked_at,
            last_used_at=record.last_used_at,
            state=record.state(datetime.now(UTC)),  # type: ignore[arg-type]
        )


class TokenCreated(TokenOut):
    token: str = Field(description="the token itself: shown this once, never stored")


class TokenList(BaseModel):
    items: list[TokenOut]


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scope: Scope
    pipeline_prefix: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="the token sees only pipelines whose names start with it",
    )
    expires: str = Field(
        default="never",
        max_length=20,
        description="how long it is valid: 90d, 12h, 30m, 45s, 2w, or never",
        examples=["90d"],
    )


TokenId = Annotated[str, Path(pattern=ID.pattern, description="the token's id")]


def tokens_router(
    store: Callable[[], TokenStore], revoked: Callable[[], None] = lambda: None
) -> APIRouter:
    """The routes over the store ``store()`` gives (it raises ``NotFound`` when the server
    keeps no tokens); ``revoked`` is told of each revocation."""
    router = APIRouter(prefix="/tokens", tags=["tokens"], route_class=ProblemRoute)

    @router.get("", response_model=TokenList, responses=errors(404, 503))
    async def list_tokens() -> TokenList:
        return TokenList(items=[TokenOut.of(r) for r in await store().list()])

    @router.post("", status_code=201, response_model=TokenCreated, responses=errors(404, 422, 503))
    async def create_token(body: TokenRequest) -> JSONResponse:
        try:
            expires_in = parse_expiry(body.expires)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        token, record = await store().create(
            body.name, body.scope, pipeline_prefix=body.pipeline_prefix, expires_in=expires_in
        )
        created = TokenCreated(**TokenOut.of(record).model_dump(), token=token)
        return JSONResponse(
            created.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"}
        )

    @router.get("/{token_id}", response_model=TokenOut, responses=errors(404, 503))
    async def get_token(token_id: TokenId) -> TokenOut:
        record = await store().get(token_id)
        if record is None:
            raise NotFound(f"no token {token_id!r}")
        return TokenOut.of(record)

    @router.delete("/{token_id}", response_model=TokenOut, responses=errors(404, 503))
    async def revoke_token(token_id: TokenId) -> TokenOut:
        """Revoke it: refused on every gateway replica within a second."""
        record = await store().revoke(token_id)
        if record is None:
            raise NotFound(f"no token {token_id!r}")
        revoked()
        return TokenOut.of(record)

    return router
