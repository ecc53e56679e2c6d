"""TLS: with ``TLS_CERT_PATH`` and ``TLS_KEY_PATH`` set, ``cmf-server up`` serves HTTPS only,
with the certificate the test makes (``openssl``), and says so when it starts."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cmf_testing.databases import (
    ADMIN_URL,
    create_database,
    drop_database,
    run_blocking,
    with_database,
)
from cmf_testing.network import free_port
from cmf_testing.servers import ServerProcess, start_server


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made now."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = _certificate(folder)
    name = run_blocking(create_database("cmf_test"))
    env = {
        "DATABASE_URL": with_database(ADMIN_URL, name),
        "TLS_CERT_PATH": str(cert),
        "TLS_KEY_PATH": str(key),
    }
    try:
        with start_server(folder, free_port(), env, tls_ca=cert) as server:
            yield server, cert
    finally:
        run_blocking(drop_database(name))


def test_the_server_answers_over_tls_with_its_certificate(
    tls_server: tuple[ServerProcess, Path],
) -> None:
    server, cert = tls_server
    assert server.base_url.startswith("https://")
    context = ssl.create_default_context(cafile=str(cert))
    answer = httpx.get(f"{server.base_url}/api/pipelines", verify=context, timeout=10)
    assert answer.status_code == 200, answer.text
    assert "listening on https://" in server.stderr()


def test_plain_http_gets_no_answer(tls_server: tuple[ServerProcess, Path]) -> None:
    server, _ = tls_server
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{server.port}/livez", timeout=5)


def test_a_client_that_does_not_trust_the_certificate_is_refused(
    tls_server: tuple[ServerProcess, Path],
) -> None:
    server, _ = tls_server
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/livez", timeout=5)


def test_tls_needs_both_files() -> None:
    from cmf_common.settings import ServiceSettings

    with pytest.raises(ValueError, match="TLS_KEY_PATH"):
        ServiceSettings(tls_cert_path=Path("/x.pem"))
