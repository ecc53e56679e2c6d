"""The HTTP edge of a real ``cmf-server up``: what happens to a connection after an error, the
timeouts, the header limit, the memory a slow client can pin, and cross-origin writes.

The server runs with short timeouts (a second) so each test takes seconds; the defaults are in
the README's settings table.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import zlib
from collections.abc import Iterator

import httpx
import psutil
import pytest
from raw_http import Connection
from support import ServerProcess, server_on_new_database

from cmf_testing.generator import push_body_bytes

TIMEOUT_S = 1.0
MAX_BODY = 1 << 20
MAX_HEADER = 65536
FOREIGN = "http://evil.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "HTTP_KEEP_ALIVE_TIMEOUT_S": str(TIMEOUT_S),
        "HTTP_HEADER_TIMEOUT_S": str(TIMEOUT_S),
        "HTTP_BODY_TIMEOUT_S": str(TIMEOUT_S),
        "HTTP_BODY_MIN_RATE": "1024",
        "MAX_BODY_BYTES": str(MAX_BODY),
        "LOG_LEVEL": "WARNING",
    }
    with server_on_new_database(tmp_path_factory.mktemp("edge"), env) as process:
        yield process


def _push_body(pipeline: str = "edge") -> bytes:
    """A push of a pipeline of its own (its executions new to the store)."""
    return push_body_bytes(pipeline, 2, seed=zlib.crc32(pipeline.encode()))


# 4. The connection after an error


def test_a_404_to_a_post_whose_body_is_unread_keeps_the_connection_usable(
    server: ServerProcess,
) -> None:
    with Connection(server.port) as conn:
        first = conn.request("POST", "/api/no-such-route", b"x" * 50_000)
        assert first.status == 404
        assert not first.closes
        assert conn.request("GET", "/livez").status == 200


def test_a_422_keeps_the_connection_usable(server: ServerProcess) -> None:
    with Connection(server.port) as conn:
        bad = conn.request("POST", "/api/mlmd_push", b"{not json", {"Content-Type": "text/plain"})
        assert bad.status in (400, 422)
        assert not bad.closes
        good = conn.request(
            "POST", "/api/mlmd_push", _push_body("after-422"), {"Content-Type": "application/json"}
        )
        assert good.status == 200, good.body


def test_a_413_says_connection_close_and_ends_the_connection_in_order(
    server: ServerProcess,
) -> None:
    with Connection(server.port) as conn:
        too_big = conn.request("POST", "/api/mlmd_push", b"x" * (MAX_BODY + 1))
        assert too_big.status == 413
        assert too_big.closes
        assert conn.closed_by_server()


def test_a_client_reusing_its_connections_never_fails_after_errors(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for _ in range(3):
            assert client.post("/api/mlmd_push", content=b"x" * (MAX_BODY + 1)).status_code == 413
            assert client.post("/api/no-such-route", content=b"{}").status_code == 404
            assert client.get("/api/native/v1/executions/not-a-number").status_code == 422
            assert client.get("/livez").status_code == 200


# 5. Timeouts


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(server: ServerProcess) -> None:
    with Connection(server.port) as conn:
        started = time.monotonic()
        assert conn.closed_by_server()
        assert time.monotonic() - started < TIMEOUT_S + 2


def test_a_connection_idle_after_an_answer_is_closed_too(server: ServerProcess) -> None:
    with Connection(server.port) as conn:
        assert conn.request("GET", "/livez").status == 200
        started = time.monotonic()
        assert conn.closed_by_server()
        assert time.monotonic() - started < TIMEOUT_S + 2


def test_headers_that_never_end_get_408(server: ServerProcess) -> None:
    with Connection(server.port) as conn:
        started = time.monotonic()
        conn.send(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        conn.send(b"X-Slow: a")  # and nothing more
        answer = conn.answer()
        assert answer.status == 408
        assert answer.closes
        assert time.monotonic() - started < TIMEOUT_S + 2
        assert conn.closed_by_server()


def test_a_body_trickling_in_at_a_few_bytes_a_second_is_cut_off_with_408(
    server: ServerProcess,
) -> None:
    with Connection(server.port) as conn:
        conn.send(
            b"POST /api/mlmd_push HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        started = time.monotonic()
        answered = threading.Event()

        def trickle() -> None:
            for _ in range(40):
                if answered.is_set():
                    return
                try:
                    conn.send(b"{")
                except OSError:
                    return
                time.sleep(0.25)

        sender = threading.Thread(target=trickle)
        sender.start()
        try:
            answer = conn.answer()
        finally:
            answered.set()
            sender.join()
        assert answer.status == 408
        assert answer.closes
        assert json.loads(answer.body)["detail"].startswith("the request body arrived too slowly")
        assert time.monotonic() - started < TIMEOUT_S + 3


def test_a_body_that_arrives_steadily_is_not_cut_off(server: ServerProcess) -> None:
    body = _push_body("steady")
    with Connection(server.port) as conn:
        conn.send(
            b"POST /api/mlmd_push HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        # Over twice the timeout in all, at well over the minimum rate.
        pieces = [body[i : i + 4096] for i in range(0, len(body), 4096)]
        for piece in pieces:
            conn.send(piece)
            time.sleep(2.5 * TIMEOUT_S / len(pieces))
        answer = conn.answer()
        assert answer.status == 200, answer.body


# 6. The request head's size, and the memory a slow client can pin


def test_a_16_mb_header_gets_431_in_the_paths_dialect(server: ServerProcess) -> None:
    with Connection(server.port) as conn:
        head = b"GET /api/native/v1/pipelines HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
        # The server stops reading after its answer; the answer is still there to read.
        with contextlib.suppress(OSError):
            conn.send(head + b"a" * (16 << 20) + b"\r\n\r\n")
        answer = conn.answer()
        assert answer.status == 431
        assert answer.closes
        assert answer.headers["content-type"] == "application/problem+json"
        assert json.loads(answer.body)["code"] == "header_fields_too_large"


def test_a_head_just_under_the_limit_is_served(server: ServerProcess) -> None:
    with Connection(server.port) as conn:
        answer = conn.request("GET", "/livez", headers={"X-Big": "a" * (MAX_HEADER - 200)})
        assert answer.status == 200


def test_twenty_unfinished_50_mb_headers_pin_only_a_few_mb(server: ServerProcess) -> None:
    process = psutil.Process(server.process.pid)
    before = process.memory_info().rss
    peak = before
    chunk = b"a" * (1 << 20)

    def send_forever(conn: Connection) -> None:
        try:
            conn.send(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            for _ in range(50):
                conn.send(chunk)
        except OSError:
            return

    connections = [Connection(server.port) for _ in range(20)]
    senders = [threading.Thread(target=send_forever, args=(c,)) for c in connections]
    try:
        for sender in senders:
            sender.start()
        while any(s.is_alive() for s in senders):
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.02)
        answers = [c.answer().status for c in connections]
    finally:
        for conn in connections:
            conn.close()
    assert answers == [431] * 20
    assert peak - before < 40 << 20, f"the server grew by {(peak - before) >> 20} MB"


# 7. Cross-origin writes, against the real server (each dialect: libs/common/tests/test_edge.py)


def test_a_text_plain_push_from_another_origin_is_refused_and_nothing_is_stored(
    server: ServerProcess,
) -> None:
    body = _push_body("cross-origin")
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        refused = client.post(
            "/api/mlmd_push",
            content=body,
            headers={
                "Origin": FOREIGN,
                "Content-Type": "text/plain",
                "Sec-Fetch-Site": "cross-site",
            },
        )
        assert refused.status_code == 403
        assert "detail" in refused.json()
        pipelines = client.get("/api/native/v1/pipelines").json()
        assert "cross-origin" not in json.dumps(pipelines)
        # The same push from the cmf client (no Origin) goes through.
        assert client.post("/api/mlmd_push", content=body).json()["status"] == "success"


def test_a_multipart_upload_from_another_origin_is_refused(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        refused = client.post(
            "/python-env",
            files={"file": ("python_env_x.yaml", b"name: x\n")},
            headers={"Origin": FOREIGN},
        )
        assert refused.status_code == 403


def test_a_write_from_the_servers_own_page_and_an_allowed_dev_ui_passes(
    server: ServerProcess,
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for origin in (server.base_url, "http://localhost:5173"):
            answer = client.post(
                "/api/mlmd_push", content=_push_body(origin), headers={"Origin": origin}
            )
            assert answer.status_code == 200, (origin, answer.text)


def test_a_host_the_server_does_not_answer_for_gets_421(server: ServerProcess) -> None:
    with Connection(server.port) as conn:
        conn.send(b"GET /api/pipelines HTTP/1.1\r\nHost: rebound.example:80\r\n\r\n")
        answer = conn.answer()
        assert answer.status == 421
        assert conn.request("GET", "/livez").status == 200  # and the connection stays usable
