"""The access layer's pure parts: the token's shape, how credentials are read from the
``Authorization`` header, expiries, the rate limiter's arithmetic, the scope rules."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from cmf_gateway.auth.layer import Malformed, challenges, credentials
from cmf_gateway.auth.limits import Limit, LocalLimiter, retry_after
from cmf_gateway.auth.scopes import declared_path, default_scope, is_public
from cmf_gateway.auth.settings import AccessSettings, AuthRequired
from cmf_gateway.auth.tokens import digest, mint, parse_expiry, well_formed


def _basic(text: str) -> bytes:
    return b"Basic " + base64.b64encode(text.encode())


def test_a_minted_token_is_well_formed_and_only_its_digest_is_kept() -> None:
    minted = mint()
    assert well_formed(minted.token)
    assert minted.token.startswith(f"cmf_{minted.id}_")
    assert minted.digest == digest(minted.token) and len(minted.digest) == 32
    assert minted.token.encode() not in minted.digest
    assert mint().token != minted.token


@pytest.mark.parametrize(
    "token",
    ["", "cmf_", "cmf_0123456789ab_short", "xyz_0123456789ab_" + "a" * 43, "cmf_XYZ_" + "a" * 43],
)
def test_other_shapes_are_not_tokens(token: str) -> None:
    assert not well_formed(token)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (b"Bearer cmf_abc", "cmf_abc"),
        (b"bearer   cmf_abc  ", "cmf_abc"),
        (_basic("cmf:cmf_abc"), "cmf_abc"),
        (_basic(":cmf_abc"), "cmf_abc"),
        (_basic("cmf_abc:"), "cmf_abc"),  # curl -u TOKEN:
        (_basic("user:pa:ss"), "pa:ss"),
    ],
)
def test_credentials_are_read_from_bearer_and_basic(header: bytes, token: str) -> None:
    assert credentials([(b"authorization", header)]) == token


def test_no_authorization_header_is_no_credentials() -> None:
    assert credentials([(b"accept", b"*/*")]) is None


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Bearer")],
        [(b"authorization", b"Bearer   ")],
        [(b"authorization", b"Basic !!!notbase64")],
        [(b"authorization", b"Basic " + base64.b64encode(b"no-colon"))],
        [(b"authorization", b"Basic " + base64.b64encode(b":"))],
        [(b"authorization", b"Basic " + base64.b64encode(b"\xff\xfe:x"))],
        [(b"authorization", b"Digest username=x")],
        [(b"authorization", "Bearer caf\u00e9".encode("latin-1"))],
        [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
    ],
)
def test_malformed_authorization_headers_are_refused(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(Malformed):
        credentials(headers)


def test_a_browser_script_is_not_offered_basic_so_no_login_dialog_pops_up() -> None:
    offered = challenges([], None)
    assert [v.split()[0] for _, v in offered] == ["Bearer", "Basic"]
    scripted = challenges([(b"sec-fetch-mode", b"cors")], "invalid_token")
    assert scripted == [("WWW-Authenticate", 'Bearer realm="cmf", error="invalid_token"')]
    navigated = challenges([(b"sec-fetch-mode", b"navigate")], None)
    assert len(navigated) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("never", None),
        (" NEVER ", None),
    ],
)
def test_expiries(text: str, expected: timedelta | None) -> None:
    assert parse_expiry(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "90", "d", "1y", "-1d", "1.5h"])
def test_bad_expiries_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expiry"):
        parse_expiry(text)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_limiter_allows_a_burst_then_the_rate() -> None:
    clock = _Clock()
    limiter = LocalLimiter(clock)
    limit = Limit(rate=10, burst=5)
    for _ in range(5):
        assert await limiter.check([("k", limit)]) is None
    wait = await limiter.check([("k", limit)])
    assert wait is not None and 0 < wait <= 0.1 + 1e-9
    clock.now += 0.1
    assert await limiter.check([("k", limit)]) is None
    assert await limiter.check([("k", limit)]) is not None
    assert await limiter.check([("other", limit)]) is None  # keys are apart


async def test_a_refused_request_counts_against_no_key() -> None:
    clock = _Clock()
    limiter = LocalLimiter(clock)
    tight, loose = Limit(rate=1, burst=1), Limit(rate=100, burst=2)
    assert await limiter.check([("tight", tight), ("loose", loose)]) is None
    assert await limiter.check([("tight", tight), ("loose", loose)]) is not None
    # The refusal did not spend the loose key's burst.
    assert await limiter.check([("loose", loose)]) is None


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after(0.001) == "1"
    assert retry_after(1.2) == "2"


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/pipelines", "read"),
        ("HEAD", "/api/native/v1/blobs/{digest}", "read"),
        ("POST", "/mlmd_push", "write"),
        ("POST", "/api/mlmd_pull", "read"),
        ("POST", "/api/v1/mlmd/pull", "read"),
        ("POST", "/v1/mlmd/push", "write"),
        ("POST", "/python-env", "write"),
        ("PUT", "/api/native/v1/blobs/{digest}", "write"),
        ("POST", "/api/native/v1/blobs/stored", "read"),
        ("POST", "/v1/executions/ancestors/batch-get", "read"),
        ("POST", "/api/register-server", "admin"),
        ("DELETE", "/v1/schedules/{schedule_id}", "admin"),
        ("GET", "/api/native/v1/export", "admin"),
        ("POST", "/api/native/v1/tokens", "admin"),
        ("GET", "/api/native/v1/tokens", "admin"),
    ],
)
def test_scopes_follow_the_method_but_where_declared(method: str, path: str, scope: str) -> None:
    assert default_scope(method, path) == scope


def test_declared_paths_drop_the_mount() -> None:
    assert declared_path("/api/native/v1/tokens") == "/tokens"
    assert declared_path("/api/v1/mlmd/pull") == "/mlmd/pull"
    assert declared_path("/v1/mlmd/pull") == "/mlmd/pull"
    assert declared_path("/api/mlmd_pull") == "/mlmd_pull"
    assert declared_path("/mlmd_pull") == "/mlmd_pull"


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/livez", True),
        ("/readyz", True),
        ("/health", True),
        ("/api/health/database", True),
        ("/openapi.json", True),
        ("/ui/", True),
        ("/ui/assets/x.js", True),
        ("/", True),
        ("/healthy", False),
        ("/pipelines", False),
        ("/api/native/v1/tokens", False),
        ("/uix", False),
    ],
)
def test_public_paths(path: str, public: bool) -> None:
    assert is_public(path) is public


def test_auth_is_on_in_distributed_mode_and_off_embedded_unless_told() -> None:
    assert AccessSettings().auth_enabled(distributed=True) is True
    assert AccessSettings().auth_enabled(distributed=False) is False
    assert AccessSettings(auth="on").auth_enabled(distributed=False) is True
    assert AccessSettings(auth="off-i-know").auth_enabled(distributed=True) is False
    assert AccessSettings(auth="off").auth_enabled(distributed=False) is False
    with pytest.raises(AuthRequired, match="off-i-know"):
        AccessSettings(auth="off").auth_enabled(distributed=True)
