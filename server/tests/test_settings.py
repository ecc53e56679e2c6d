"""The cmf-server process's settings: the origins a browser may call it from."""

from __future__ import annotations

import pytest

from cmf_server.settings import ServerSettings


def test_the_default_origins_are_the_servers_own_and_the_localhost_dev_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CORS_ORIGINS", raising=False)
    origins = ServerSettings(port=8123).allowed_origins()
    for origin in (
        "http://127.0.0.1:8123",
        "http://localhost:8123",
        "http://localhost:5173",
        "http://localhost:3000",
    ):
        assert origin in origins
    assert "*" not in origins


def test_a_named_host_is_its_own_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORS_ORIGINS", raising=False)
    assert "http://cmf.lan:80" in ServerSettings(host="cmf.lan", port=80).allowed_origins()


def test_cors_origins_replaces_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://ui.example, http://10.0.0.5:3000/")
    assert ServerSettings().allowed_origins() == ["https://ui.example", "http://10.0.0.5:3000"]


def test_an_empty_cors_origins_allows_no_other_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "")
    assert ServerSettings().allowed_origins() == []
