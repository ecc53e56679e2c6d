"""The gateway's access settings (docs/access.md): whether tokens are required, how verified
tokens are cached, the rate limits and the body limits per kind of route."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cmf_common.settings import ServiceSettings

# ``AUTH``: ``on`` requires a token; ``off`` does not (refused in distributed mode);
# ``off-i-know`` runs distributed without tokens all the same. Unset: on in distributed mode,
# off in the embedded server.
AuthMode = Literal["on", "off", "off-i-know"]
OFF_ANYWAY = "off-i-know"


class AuthRequired(RuntimeError):
    """Distributed mode with ``AUTH=off``: the gateway refuses to start."""


class AccessSettings(ServiceSettings):
    auth: AuthMode | None = None

    # Verified tokens are kept this long; a revocation reaches every replica sooner, through
    # the revocation version each replica reads every ``token_revocation_poll_s``. A replica
    # whose last read is older than ``token_revocation_stale_s`` trusts no cached token.
    token_cache_ttl_s: float = Field(default=60.0, gt=0)
    token_revocation_poll_s: float = Field(default=0.2, gt=0)
    token_revocation_stale_s: float = Field(default=1.0, gt=0)
    # A token's last use is written in batches, at most this often.
    token_last_use_flush_s: float = Field(default=10.0, gt=0)

    # Requests per second (and the burst above it) per token and per client address; 0 turns
    # a limit off. In Redis when ``REDIS_URL`` is set (shared by every replica), else in the
    # process.
    redis_url: str | None = None
    rate_limit_token_rps: float = Field(default=100.0, ge=0)
    rate_limit_token_burst: int = Field(default=200, ge=1)
    rate_limit_address_rps: float = Field(default=300.0, ge=0)
    rate_limit_address_burst: int = Field(default=600, ge=1)

    # The largest body the gateway lets through, by kind of route (cmf_gateway.auth.scopes):
    # a push (``MAX_BODY_BYTES``, as the metadata service), an uploaded file
    # (``MAX_UPLOAD_BYTES``), a query's or an administrative call's. Artifact bytes are bounded
    # by the artifact service alone.
    max_body_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    max_query_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1)

    # The signed principal forwarded to the services lives this long (it is signed again
    # before it expires, never per request).
    principal_ttl_s: float = Field(default=60.0, ge=2)

    def auth_enabled(self, *, distributed: bool) -> bool:
        """Whether requests need a token: ``AUTH``, else on when ``distributed``. Distributed
        with ``AUTH=off`` is refused (:class:`AuthRequired`): say ``off-i-know``."""
        if self.auth == "on":
            return True
        if self.auth == OFF_ANYWAY:
            return False
        if not distributed:
            return False
        if self.auth == "off":
            raise AuthRequired(
                "AUTH=off: the gateway of a distributed deployment requires tokens; set "
                f"AUTH={OFF_ANYWAY} to run it without authentication all the same"
            )
        return True
