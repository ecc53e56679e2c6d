"""The SDK's own rules, against an in-process fake server (``httpx.MockTransport``): typed
errors with the server's words, retries on 429/503 honouring ``Retry-After``, timeouts, the
token, paging. The real server is exercised in tests/integration/test_sdk.py."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cmf_server_client import AsyncClient, Client, RetryPolicy, errors

URL = "http://cmf.test"
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cmf_server_client"
Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, code: str, detail: str, **headers: str) -> httpx.Response:
    body = {
        "type": f"https://cmf-server.dev/problems/{code}",
        "title": "Not found" if status == 404 else "Error",
        "status": status,
        "detail": detail,
        "code": code,
        "trace_id": "ab" * 16,
    }
    return httpx.Response(
        status, json=body, headers={"Content-Type": "application/problem+json", **headers}
    )


class Recorder:
    """A fake server: answers each request with the next of ``answers`` and keeps it."""

    def __init__(self, *answers: httpx.Response | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer


def client_for(recorder: Recorder, **options: Any) -> tuple[Client, list[float]]:
    slept: list[float] = []
    client = Client(URL, transport=httpx.MockTransport(recorder), **options)
    client._http.sleep = slept.append
    return client, slept


def test_an_error_answer_raises_its_typed_exception_with_the_servers_words() -> None:
    recorder = Recorder(problem(404, "artifact_not_found", "artifact 99 not found"))
    client, _ = client_for(recorder)
    with pytest.raises(errors.NotFound) as caught:
        client.artifact(99)
    assert caught.value.status == 404
    assert caught.value.code == "artifact_not_found"
    assert caught.value.message == "artifact 99 not found"
    assert caught.value.trace_id == "ab" * 16
    assert "artifact 99 not found" in str(caught.value)


def test_the_reference_and_envelope_dialects_give_their_message_too() -> None:
    client, _ = client_for(Recorder(httpx.Response(400, json={"detail": "Unsafe file name"})))
    with pytest.raises(errors.BadRequest, match="Unsafe file name"):
        client.stages("p")
    envelope = {"status": "error", "code": 404, "message": "Pipeline p not found.", "errors": []}
    client, _ = client_for(Recorder(httpx.Response(404, json=envelope)))
    with pytest.raises(errors.NotFound, match=r"Pipeline p not found\."):
        client.model_card(3)


def test_503_is_retried_after_the_seconds_retry_after_says() -> None:
    ok = httpx.Response(200, json={"pipeline": "p", "items": []})
    recorder = Recorder(problem(503, "unavailable", "database down", **{"Retry-After": "2"}), ok)
    client, slept = client_for(recorder)
    assert client.stages("p") == []
    assert slept == [2.0]
    assert len(recorder.requests) == 2


def test_429_backs_off_exponentially_without_retry_after_then_gives_up() -> None:
    recorder = Recorder(problem(429, "rate_limited", "slow down"))
    client, slept = client_for(recorder, retry=RetryPolicy(retries=3, backoff=1.0, max_delay=60))
    with pytest.raises(errors.RateLimited, match="slow down"):
        client.stages("p")
    assert len(recorder.requests) == 4
    assert len(slept) == 3
    assert all(0.5 * 2**i <= wait <= 2**i for i, wait in enumerate(slept))


def test_retry_after_is_capped_and_reported_on_the_exception() -> None:
    recorder = Recorder(problem(503, "unavailable", "busy", **{"Retry-After": "3600"}))
    client, slept = client_for(recorder, retry=RetryPolicy(retries=1, max_delay=5))
    with pytest.raises(errors.Unavailable) as caught:
        client.stages("p")
    assert slept == [5]
    assert caught.value.retry_after == 3600


def test_other_errors_are_not_retried() -> None:
    recorder = Recorder(problem(500, "internal", "a bug"))
    client, slept = client_for(recorder)
    with pytest.raises(errors.ServerError) as caught:
        client.stages("p")
    assert type(caught.value) is errors.ServerError
    assert slept == []
    assert len(recorder.requests) == 1


def test_a_timeout_is_a_typed_transport_error() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    client, _ = client_for(Recorder(slow))
    with pytest.raises(errors.Timeout, match="timed out"):
        client.stages("p")


def test_every_request_has_a_timeout() -> None:
    seen: list[Any] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions.get("timeout"))
        return httpx.Response(200, json={"pipeline": "p", "items": []})

    Client(URL, transport=httpx.MockTransport(record)).stages("p")
    Client(URL, timeout=2.5, transport=httpx.MockTransport(record)).stages("p")
    assert all(seen[0][k] for k in ("connect", "read", "write", "pool"))
    assert seen[1]["read"] == 2.5


def test_the_token_is_sent_as_a_bearer_header(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder(httpx.Response(200, json={"pipeline": "p", "items": []}))
    Client(URL, token="s3cret", transport=httpx.MockTransport(recorder)).stages("p")
    monkeypatch.setenv("CMF_SERVER_TOKEN", "from-env")
    Client(URL, transport=httpx.MockTransport(recorder)).stages("p")
    monkeypatch.delenv("CMF_SERVER_TOKEN")
    Client(URL, transport=httpx.MockTransport(recorder)).stages("p")
    headers = [r.headers.get("Authorization") for r in recorder.requests]
    assert headers == ["Bearer s3cret", "Bearer from-env", None]
    assert "s3cret" not in repr(Client(URL, token="s3cret"))


def page(items: list[int], cursor: str | None) -> httpx.Response:
    body = {"items": [{"id": i, "name": f"x{i}"} for i in items], "total": 5}
    return httpx.Response(200, json={**body, "next_cursor": cursor})


def test_a_list_follows_next_cursor_with_the_same_filters() -> None:
    recorder = Recorder(page([1, 2], "c1"), page([3, 4], "c2"), page([5], None))
    client, _ = client_for(recorder)
    found = [x["id"] for x in client.executions(pipeline="p", properties={"k": "v:w"}, page_size=2)]
    assert found == [1, 2, 3, 4, 5]
    params = [dict(r.url.params.multi_items()) for r in recorder.requests]
    assert [p.get("cursor") for p in params] == [None, "c1", "c2"]
    assert all(p["pipeline"] == "p" and p["property"] == "k:v:w" for p in params)
    assert all(p["limit"] == "2" for p in params)


def test_max_items_stops_fetching_pages() -> None:
    recorder = Recorder(page([1, 2], "c1"), page([3, 4], "c2"))
    client, _ = client_for(recorder)
    assert [a["id"] for a in client.artifacts(page_size=2, max_items=3)] == [1, 2, 3]
    assert len(recorder.requests) == 2


def test_pipeline_names_with_a_slash_are_one_path_segment() -> None:
    recorder = Recorder(httpx.Response(200, json={"pipeline": "a/b", "items": []}))
    client, _ = client_for(recorder)
    client.stages("a/b c")
    assert recorder.requests[0].url.raw_path == b"/api/native/v1/pipelines/a%2Fb%20c/stages"


def test_lineage_and_pipeline_graphs_link_to_the_same_view_in_the_explorer() -> None:
    walk = {
        "root": "artifact:7",
        "nodes": [{"id": "artifact:7", "kind": "artifact", "name": "m:1", "pipelines": ["a/b"]}],
        "edges": [],
        "partial": False,
    }
    graph = {"level": "execution", "nodes": [], "edges": []}
    client, _ = client_for(Recorder(httpx.Response(200, json=walk)))
    lineage = client.downstream(7, depth=2, types=["Model"])
    assert lineage.ui_url == (
        f"{URL}/ui/p/a%2Fb/explorer?focus=artifact%3A7&dir=downstream&depth=2&types=Model"
        "&sel=artifact%3A7"
    )
    client, _ = client_for(Recorder(httpx.Response(200, json=graph)))
    assert client.pipeline_graph("a/b", "execution").ui_url == (
        f"{URL}/ui/p/a%2Fb/explorer?level=execution"
    )
    client, _ = client_for(Recorder(httpx.Response(200, json=graph)))
    assert client.pipeline_graph("a/b").ui_url == f"{URL}/ui/p/a%2Fb/explorer?level=combined"


def test_bad_arguments_fail_before_any_request() -> None:
    recorder = Recorder(httpx.Response(200, json={}))
    client, _ = client_for(recorder)
    with pytest.raises(ValueError, match="direction"):
        client.lineage(1, direction="sideways")
    with pytest.raises(ValueError, match="not both"):
        client.lineage(1, uri="abc")
    with pytest.raises(ValueError, match="page_size"):
        list(client.pipelines(page_size=0))
    with pytest.raises(ValueError, match="http"):
        Client("127.0.0.1:8080")
    assert recorder.requests == []


async def test_the_async_client_retries_and_pages_alike() -> None:
    recorder = Recorder(
        problem(503, "unavailable", "busy", **{"Retry-After": "0"}),
        page([1], "c1"),
        page([2], None),
    )
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with AsyncClient(URL, transport=httpx.MockTransport(recorder)) as client:
        client._http.sleep = sleep
        found = [p["id"] async for p in client.pipelines(page_size=1)]
    assert found == [1, 2]
    assert slept == [0.0]


async def test_the_async_client_raises_typed_errors() -> None:
    recorder = Recorder(problem(404, "execution_not_found", "execution 7 not found"))
    async with AsyncClient(URL, transport=httpx.MockTransport(recorder)) as client:
        with pytest.raises(errors.NotFound, match="execution 7 not found"):
            await client.execution(7)


def test_a_download_lands_only_when_complete_and_matching(tmp_path: Path) -> None:
    data = b"model bytes" * 1000
    md5 = "bd6b2a7c8e4a3ba2bd7a1c7e5c5e2b5f"  # not the digest of data
    import hashlib

    good = hashlib.md5(data).hexdigest()
    progress: list[tuple[int, int | None]] = []
    ok = httpx.Response(200, content=data, headers={"ETag": f'"{good}"'})
    client, _ = client_for(Recorder(ok))
    target = client.download(
        "p", "artifacts/model.pkl:" + good, tmp_path, progress=lambda d, t: progress.append((d, t))
    )
    assert target == tmp_path / "model.pkl"
    assert target.read_bytes() == data
    assert progress[-1] == (len(data), len(data))
    bad = httpx.Response(200, content=data, headers={"ETag": f'"{md5}"'})
    client, _ = client_for(Recorder(bad))
    with pytest.raises(errors.CmfServerError, match="hash to"):
        client.download("p", "x:" + md5, tmp_path / "other.pkl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pkl"]


def test_an_upload_streams_the_file_and_is_resent_whole_on_503(tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    source.write_bytes(b"a,b\n" * 300_000)
    bodies: list[bytes] = []

    def store(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        return httpx.Response(201, json={"deduplicated": False, "size": len(bodies[-1])})

    def busy(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        return problem(503, "unavailable", "busy", **{"Retry-After": "0"})

    recorder = Recorder(busy, store)
    client, _ = client_for(recorder)
    answer = client.upload(source, "p", "data.csv:abc")
    assert answer == {"deduplicated": False, "size": source.stat().st_size}
    assert bodies == [source.read_bytes()] * 2
    request = recorder.requests[-1]
    assert request.url.path == "/api/artifact_push"
    assert request.headers["Content-Length"] == str(source.stat().st_size)
    assert dict(request.url.params) == {"pipeline_name": "p", "artifact_name": "data.csv:abc"}


def test_a_stored_blob_is_not_sent_again(tmp_path: Path) -> None:
    source = tmp_path / "blob"
    source.write_bytes(b"same bytes")
    recorder = Recorder(httpx.Response(200))
    client, _ = client_for(recorder)
    answer = client.upload_blob(source)
    assert answer["deduplicated"] is True
    assert [r.method for r in recorder.requests] == ["HEAD"]


def test_the_package_parses_as_python_3_9() -> None:
    """It sits beside cmflib in environments as old as Python 3.9: no newer syntax."""
    for path in sorted(PACKAGE.glob("*.py")):
        ast.parse(path.read_text(), str(path), feature_version=(3, 9))
        text = path.read_text()
        assert "match " not in text.replace("# match", ""), path
        assert "strict=True" not in text, f"{path}: zip(strict=) is Python 3.10"


def test_errors_carry_json_bodies() -> None:
    body = {"status": "invalid_request", "detail": [{"msg": "field required"}]}
    error = errors.error_for(422, body)
    assert isinstance(error, errors.UnprocessableEntity)
    assert error.message == "field required"
    assert json.loads(json.dumps(error.body)) == body


def test_progress_true_draws_a_tqdm_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = b"x" * 50_000
    client, _ = client_for(Recorder(httpx.Response(200, content=data)))
    client.download_blob("d" * 32, tmp_path / "blob", progress=True)
    assert "100%" in capsys.readouterr().err
