"""Secrets from files: ``SECRETS_DIR`` (compose's ``/run/secrets``) gives the settings the
environment does not."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import SecretStr

from cmf_common.settings import ServiceSettings


class _Settings(ServiceSettings):
    service_name: ClassVar[str] = "things"

    neo4j_password: SecretStr | None = None


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DATABASE_URL", "THINGS_DATABASE_URL", "NEO4J_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    return tmp_path


def test_a_secret_setting_is_read_from_the_file_of_its_name(secrets: Path) -> None:
    (secrets / "neo4j_password").write_text("s3cret\n")
    (secrets / "database_url").write_text("postgresql://a@db/x\n")
    settings = _Settings()
    assert settings.neo4j_password is not None
    assert settings.neo4j_password.get_secret_value() == "s3cret"
    assert settings.require_database_url() == "postgresql://a@db/x"


def test_the_service_s_own_database_file_wins_over_the_shared_one(secrets: Path) -> None:
    (secrets / "database_url").write_text("postgresql://shared@db/x")
    (secrets / "things_database_url").write_text("postgresql://things@db/x\n")
    assert _Settings().require_database_url() == "postgresql://things@db/x"


def test_the_environment_wins_over_a_file(secrets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (secrets / "neo4j_password").write_text("from-file")
    monkeypatch.setenv("NEO4J_PASSWORD", "from-env")
    password = _Settings().neo4j_password
    assert password is not None and password.get_secret_value() == "from-env"


def test_without_secrets_dir_no_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECRETS_DIR", raising=False)
    monkeypatch.delenv("NEO4J_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "neo4j_password").write_text("ignored")
    assert _Settings().neo4j_password is None
