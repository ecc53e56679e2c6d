"""The gateway's access layer: pure ASGI around its routing, so it holds for every
transport (the apps mounted in-process, the proxy to the services' processes).

For each request (docs/access.md):

1. Any ``X-CMF-Principal`` the client sent is dropped: only the gateway signs one.
2. The route's rule (``scopes.AccessTable``) says the scope it needs; a public path (health,
   probes, the OpenAPI document, the UI's files) goes straight on.
3. The rate limits, per client address and per token presented (``limits``): 429 with
   ``Retry-After``. They are counted before the token is looked up, so a flood of wrong
   tokens costs no lookups past its limit.
4. With auth on, the token: ``Authorization: Bearer <token>``, or HTTP Basic with the token as
   the password (any user name; a token as the user name with no password is taken too), so
   ``http://cmf:<token>@host`` works as a server URL. None, malformed, unknown, expired or
   revoked: 401 with ``WWW-Authenticate``. Then its scope: 403 when it lacks the route's.
5. The body limit of the route; then the request goes on with the signed principal
   (``cmf_common.principal``: the token's name, scope and pipeline prefix) in
   ``X-CMF-Principal``, for the service to verify and filter by.

Every refusal answers in the route's dialect and is observed as every request is (its
``X-Request-ID``, its ``http.request`` log line, its span, and ``cmf_http_requests_total`` under
the route's template; ``cmf_common.middleware``): the app behind never sees it. With auth
off nothing is required (and nothing limited); the principal the services get is full access,
signed when a secret is configured.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from cmf_common.body_limit import BodyLimitMiddleware
from cmf_common.edge import BodyTooLarge, declared_over, has_body, too_large
from cmf_common.errors import DomainError, Unavailable
from cmf_common.middleware import ROUTE_TEMPLATE, ObservabilityMiddleware
from cmf_common.principal import FULL_ACCESS, PRINCIPAL_HEADER, Principal, sign_principal
from cmf_gateway.auth.limits import Limit, Limiter, retry_after
from cmf_gateway.auth.scopes import AccessTable, Rule
from cmf_gateway.auth.tokens import well_formed
from cmf_gateway.auth.verifier import TokenRefused, TokensUnavailable, TokenVerifier

log = structlog.get_logger("cmf.auth")

_PRINCIPAL = PRINCIPAL_HEADER.lower().encode("latin-1")
_AUTHORIZATION = b"authorization"
REALM = "cmf"

REFUSALS = Counter(
    "cmf_gateway_refusals_total",
    "Requests the gateway's access layer refused, by reason.",
    ["reason"],
)


# Who a public path (health, the UI's files) is asked for: no one, allowed nothing.
ANONYMOUS = Principal(subject="anonymous", scopes=frozenset())


class Unauthenticated(DomainError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class InsufficientScope(DomainError):
    status = 403
    code = "insufficient_scope"
    title = "Forbidden"


class TooManyRequests(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


class Malformed(Exception):
    """An ``Authorization`` header that says nothing we can read."""


def credentials(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token a request's ``Authorization`` header carries; ``None`` without one."""
    values = [value for name, value in headers if name == _AUTHORIZATION]
    if not values:
        return None
    if len(values) > 1:
        raise Malformed("more than one Authorization header")
    try:
        text = values[0].decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise Malformed("the Authorization header is not ASCII") from exc
    scheme, _, rest = text.partition(" ")
    rest = rest.strip()
    if not rest:
        raise Malformed("the Authorization header has no credentials")
    if scheme.lower() == "bearer":
        return rest
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(rest, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Malformed("the Basic credentials are not base64 of UTF-8 text") from exc
        user, colon, password = decoded.partition(":")
        if not colon:
            raise Malformed("the Basic credentials have no ':'")
        token = password or user
        if not token:
            raise Malformed("the Basic credentials are empty")
        return token
    raise Malformed(f"unsupported authorization scheme {scheme[:20]!r}: use Bearer or Basic")


def _is_script_request(headers: list[tuple[bytes, bytes]]) -> bool:
    """A page's script (``fetch``) rather than a navigation or a client that is no browser:
    a Basic challenge would make the browser pop its own login dialog over the UI's."""
    for name, value in headers:
        if name == b"sec-fetch-mode":
            return value != b"navigate"
    return False


def challenges(headers: list[tuple[bytes, bytes]], error: str | None) -> list[tuple[str, str]]:
    bearer = f'Bearer realm="{REALM}"'
    if error is not None:
        bearer += f', error="{error}"'
    found = [("WWW-Authenticate", bearer)]
    if not _is_script_request(headers):
        found.append(("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'))
    return found


@dataclass
class _Signed:
    value: bytes
    renew_at: float


class PrincipalSigner:
    """The signed header of each principal, kept until half its lifetime is gone (signing is
    cheap, but not free on every request)."""

    def __init__(self, secret: bytes, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.ttl_s = ttl_s
        self.clock = clock
        self._signed: dict[Principal, _Signed] = {}

    def header(self, principal: Principal) -> bytes:
        now = self.clock()
        signed = self._signed.get(principal)
        if signed is None or now >= signed.renew_at:
            value = sign_principal(principal, self.secret, now=now, ttl_s=self.ttl_s)
            if len(self._signed) > 10_000:
                self._signed.clear()
            signed = _Signed(value.encode("latin-1"), now + self.ttl_s / 2)
            self._signed[principal] = signed
        return signed.value


@dataclass(frozen=True)
class Limits:
    token: Limit | None
    address: Limit | None


class AccessLayer:
    def __init__(
        self,
        app: ASGIApp,
        *,
        table: AccessTable,
        verifier: Callable[[], TokenVerifier | None] | None,
        limiter: Callable[[], Limiter | None],
        limits: Limits,
        signer: PrincipalSigner | None,
        service: str = "gateway",
    ) -> None:
        """``verifier`` ``None``: auth is off. ``verifier`` and ``limiter`` are read per
        request (they exist once the gateway's lifespan started); ``service`` names the
        process its refusals are observed under."""
        self.app = app
        self.observer = ObservabilityMiddleware(app, service=service)
        self.table = table
        self.verifier = verifier
        self.limiter = limiter
        self.limits = limits
        self.signer = signer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = [
            (name, value) for name, value in scope.get("headers") or () if name != _PRINCIPAL
        ]
        path: str = scope.get("path", "")
        rule = self.table.rule(scope.get("method", "GET"), path)
        if rule.scope is None:
            if self.signer is not None:  # a service behind (the UI's) wants a signed call
                headers.append((_PRINCIPAL, self.signer.header(ANONYMOUS)))
            await self.app({**scope, "headers": headers}, receive, send)
            return
        principal = FULL_ACCESS
        if self.verifier is not None:
            refusal, found = await self._authenticate(scope, headers, rule)
            if refusal is not None:
                await self._refuse(refusal, rule, scope, receive, send)
                return
            assert found is not None
            principal = found
        if self.signer is not None:
            headers.append((_PRINCIPAL, self.signer.header(principal)))
        app = self.app
        if rule.body_limit is not None and has_body(scope):
            if declared_over(scope, rule.body_limit):
                REFUSALS.labels("body_limit").inc()
                refusal = too_large(BodyTooLarge(rule.body_limit), rule.dialect)
                await self._refuse(refusal, rule, scope, receive, send)
                return
            dialect = rule.dialect
            app = BodyLimitMiddleware(app, max_bytes=rule.body_limit, dialect_of=lambda _: dialect)
        await app({**scope, "headers": headers}, receive, send)

    async def _refuse(
        self, refusal: ASGIApp, rule: Rule, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer ``refusal``, observed under the route's template (module docstring)."""
        if rule.route is not None:
            scope = {**scope, ROUTE_TEMPLATE: rule.route}
        await self.observer.observe(refusal, scope, receive, send)

    async def _authenticate(
        self, scope: Scope, headers: list[tuple[bytes, bytes]], rule: Rule
    ) -> tuple[ASGIApp | None, Principal | None]:
        """``(None, principal)``, or ``(the refusal to answer, None)``."""
        malformed: str | None = None
        try:
            token = credentials(headers)
        except Malformed as exc:
            token, malformed = None, str(exc)
        wait = await self._limited(scope, token)
        if wait is not None:
            REFUSALS.labels("rate_limited").inc()
            limited = TooManyRequests(f"too many requests; retry in {retry_after(wait)} s")
            return _answer(rule, limited, [("Retry-After", retry_after(wait))]), None
        if malformed is not None:
            return self._unauthenticated(headers, rule, malformed, "malformed"), None
        if token is None:
            return self._unauthenticated(headers, rule, "a token is required", "missing"), None
        if not well_formed(token):
            return self._unauthenticated(headers, rule, "malformed token", "malformed"), None
        verifier = self.verifier() if self.verifier is not None else None
        if verifier is None:
            starting = Unavailable("the gateway is starting; retry shortly")
            return _answer(rule, starting, [("Retry-After", "1")]), None
        try:
            record = await verifier.verify(token)
        except TokenRefused as exc:
            return self._unauthenticated(headers, rule, exc.reason, exc.kind), None
        except TokensUnavailable as exc:
            return _answer(rule, Unavailable(str(exc)), [("Retry-After", "1")]), None
        principal = Principal(
            subject=f"token:{record.name}",
            scopes=frozenset({record.scope}),
            pipeline_prefix=record.pipeline_prefix,
            token_id=record.id,
        )
        assert rule.scope is not None
        if not principal.has_scope(rule.scope):
            REFUSALS.labels("scope").inc()
            lacking = InsufficientScope(
                f"this token's scope is {record.scope!r}; this route needs {rule.scope!r}"
            )
            challenge = f'Bearer realm="{REALM}", error="insufficient_scope"'
            return _answer(rule, lacking, [("WWW-Authenticate", challenge)]), None
        return None, principal

    async def _limited(self, scope: Scope, token: str | None) -> float | None:
        limiter = self.limiter()
        if limiter is None:
            return None
        keys: list[tuple[str, Limit]] = []
        client = scope.get("client")
        if self.limits.address is not None and client:
            keys.append((f"addr:{client[0]}", self.limits.address))
        if self.limits.token is not None and token is not None:
            # Keyed by what was presented: a wrong secret never spends a real token's limit.
            key = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:32]
            keys.append((f"token:{key}", self.limits.token))
        return await limiter.check(keys) if keys else None

    def _unauthenticated(
        self, headers: list[tuple[bytes, bytes]], rule: Rule, reason: str, label: str
    ) -> ASGIApp:
        REFUSALS.labels(label).inc()
        error = None if label == "missing" else "invalid_token"
        return _answer(rule, Unauthenticated(reason), challenges(headers, error))


def _answer(rule: Rule, error: DomainError, headers: list[tuple[str, str]]) -> ASGIApp:
    response = rule.dialect.domain_error(error)
    for name, value in headers:
        response.headers.append(name, value)
    return response
