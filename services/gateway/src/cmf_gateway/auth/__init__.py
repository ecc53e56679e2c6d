"""The gateway's access control: tokens, scopes, the signed principal, rate limits
(docs/access.md). :class:`Access` puts it together."""

from cmf_gateway.auth.access import Access
from cmf_gateway.auth.settings import AccessSettings, AuthRequired

__all__ = ["Access", "AccessSettings", "AuthRequired"]
