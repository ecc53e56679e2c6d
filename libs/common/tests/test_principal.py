"""The signed principal (cmf_common.principal): signing, verifying, scopes and prefixes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from cmf_common.principal import (
    FULL_ACCESS,
    PRINCIPAL_HEADER,
    InvalidPrincipal,
    Principal,
    service_principal,
    sign_principal,
    verify_principal,
)
from cmf_common.settings import ServiceSettings

SECRET = b"a-test-secret-of-32-bytes-length"
NOW = 1_800_000_000.0


def reader(prefix: str | None = "team-a/") -> Principal:
    return Principal("ci", frozenset({"read"}), prefix, "tok-1")


def test_a_signed_principal_verifies_to_itself() -> None:
    for p in (reader(), reader(None), FULL_ACCESS, service_principal("metadata")):
        assert verify_principal(sign_principal(p, SECRET, now=NOW), SECRET, now=NOW + 1) == p
    odd = Principal('ü/ß "x"', frozenset({"write", "read"}), "pré.fix/", None)
    assert verify_principal(sign_principal(odd, SECRET, now=NOW), SECRET, now=NOW) == odd
    assert PRINCIPAL_HEADER == "X-CMF-Principal"


def test_the_value_is_a_header_safe_token() -> None:
    value = sign_principal(reader(), SECRET, now=NOW)
    assert value.startswith("v1.") and value.count(".") == 2
    assert all(c.isalnum() or c in "-_." for c in value)


def test_it_expires_after_its_ttl() -> None:
    value = sign_principal(reader(), SECRET, now=NOW, ttl_s=5)
    assert verify_principal(value, SECRET, now=NOW + 4.9) == reader()
    with pytest.raises(InvalidPrincipal, match="expired"):
        verify_principal(value, SECRET, now=NOW + 5)


def test_another_secret_or_any_changed_byte_is_refused() -> None:
    value = sign_principal(reader(), SECRET, now=NOW)
    with pytest.raises(InvalidPrincipal, match="signature"):
        verify_principal(value, b"another-secret-of-32-bytes-long!", now=NOW)
    for i in range(3, len(value)):
        if value[i] == ".":
            continue
        changed = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]
        with pytest.raises(InvalidPrincipal):
            verify_principal(changed, SECRET, now=NOW)


def test_a_payload_widened_without_the_secret_is_refused() -> None:
    value = sign_principal(reader(), SECRET, now=NOW)
    _, body, signature = value.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    del payload["pfx"]
    payload["scp"] = ["admin"]
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidPrincipal, match="signature"):
        verify_principal(f"v1.{forged}.{signature}", SECRET, now=NOW)


@pytest.mark.parametrize(
    "value",
    ["", "v1", "v1.", "v1..", "v2.e30.AAAA", "v1.e30.", "v1.e30.a.b", "v1.e30.!!!!", "x" * 300],
)
def test_malformed_values_are_refused(value: str) -> None:
    with pytest.raises(InvalidPrincipal):
        verify_principal(value, SECRET, now=NOW)


def _signed_payload(payload: object) -> str:
    import hashlib
    import hmac

    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    mac = hmac.new(SECRET, f"v1.{body}".encode(), hashlib.sha256).digest()
    return f"v1.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"scp": [], "exp": NOW + 9},
        {"sub": "x", "scp": "read", "exp": NOW + 9},
        {"sub": "x", "scp": [1], "exp": NOW + 9},
        {"sub": "x", "scp": [], "exp": True},
        {"sub": "x", "scp": [], "exp": "later"},
        {"sub": "x", "scp": [], "exp": NOW + 9, "pfx": 3},
        {"sub": "x", "scp": [], "exp": NOW + 9, "tid": []},
    ],
)
def test_a_well_signed_but_malformed_payload_is_refused(payload: object) -> None:
    with pytest.raises(InvalidPrincipal, match="malformed"):
        verify_principal(_signed_payload(payload), SECRET, now=NOW)


def test_without_a_secret_nothing_is_signed_or_verified() -> None:
    with pytest.raises(ValueError):
        sign_principal(reader(), b"", now=NOW)
    with pytest.raises(InvalidPrincipal):
        verify_principal(sign_principal(reader(), SECRET, now=NOW), b"", now=NOW)


def test_admin_implies_write_implies_read() -> None:
    def scopes(*granted: str) -> list[str]:
        p = Principal("x", frozenset(granted))
        return [s for s in ("read", "write", "admin") if p.has_scope(s)]

    assert scopes("admin") == ["read", "write", "admin"]
    assert scopes("write") == ["read", "write"]
    assert scopes("read") == ["read"]
    assert scopes() == [] and scopes("other") == []
    assert not Principal("x", frozenset({"read"})).has_scope("other")


def test_the_prefix_is_a_plain_string_prefix() -> None:
    p = reader("team-a/")
    assert p.allows_pipeline("team-a/train") and p.allows_pipeline("team-a/")
    assert not p.allows_pipeline("team-b/train") and not p.allows_pipeline("team-a")
    assert not p.allows_pipeline("TEAM-A/train")
    assert reader(None).allows_pipeline("anything") and reader("").allows_pipeline("x")
    assert reader("").prefix is None and reader(None).prefix is None and p.prefix == "team-a/"
    assert FULL_ACCESS.has_scope("admin") and FULL_ACCESS.prefix is None


def test_the_secret_comes_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRINCIPAL_SECRET", raising=False)
    monkeypatch.delenv("PRINCIPAL_SECRET_FILE", raising=False)
    monkeypatch.delenv("REQUIRE_PRINCIPAL", raising=False)
    assert ServiceSettings().principal_secret_bytes() is None
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(SECRET + b"\n")
    monkeypatch.setenv("PRINCIPAL_SECRET_FILE", str(secret_file))
    assert ServiceSettings().principal_secret_bytes() == SECRET
    monkeypatch.setenv("PRINCIPAL_SECRET", "from-the-environment-wins")
    assert ServiceSettings().principal_secret_bytes() == b"from-the-environment-wins"
    monkeypatch.setenv("PRINCIPAL_SECRET", "short")
    with pytest.raises(ValueError, match="16 bytes"):
        ServiceSettings().principal_secret_bytes()


def test_a_standalone_service_requires_a_principal_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REQUIRE_PRINCIPAL", raising=False)
    assert not ServiceSettings().require_principal
    assert ServiceSettings().standalone().require_principal
    monkeypatch.setenv("REQUIRE_PRINCIPAL", "false")
    assert not ServiceSettings().standalone().require_principal
