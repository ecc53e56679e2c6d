"""The seed's artifact_push / artifact_pull and our blob routes, on the local store, with the
metadata service resolving artifacts (both apps in-process, real PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from artifacts_support import (
    PIPELINE,
    Recorded,
    Running,
    artifact_settings,
    pipeline_with_bytes,
    push_body,
    running,
)

from cmf_testing.databases import ADMIN_URL, fresh_database, with_database
from cmf_testing.problems import assert_problem


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    async with fresh_database("cmf_artifacts") as name:
        yield with_database(ADMIN_URL, name)


@pytest.fixture(scope="module")
def recorded() -> dict[str, Recorded]:
    return pipeline_with_bytes()[1]


@pytest.fixture(scope="module")
async def services(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    settings = artifact_settings(database_url, tmp_path_factory.mktemp("blobs"))
    async with running(settings) as started:
        payload, _ = pipeline_with_bytes()
        answer = await started.metadata.post("/api/mlmd_push", json=push_body(payload))
        assert answer.json() == {"status": "success"}, answer.text
        yield started


@pytest.fixture
def client(services: Running) -> httpx.AsyncClient:
    return services.artifacts


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def where(artifact: Recorded, pipeline: str = PIPELINE) -> dict[str, str]:
    return {"pipeline_name": pipeline, "artifact_name": artifact.name}


async def test_an_artifact_pushed_by_name_is_pulled_by_name(
    client: httpx.AsyncClient, recorded: dict[str, Recorded]
) -> None:
    model = recorded["Model artifacts/model/model.pkl"]
    pushed = await client.post("/api/artifact_push", params=where(model), content=model.content)
    assert pushed.status_code == 201, pushed.text
    assert pushed.json() == {
        "pipeline_name": PIPELINE,
        "artifact_name": model.name,
        "uri": model.uri,
        "md5": model.uri,
        "sha256": hashlib.sha256(model.content).hexdigest(),
        "size": len(model.content),
        "deduplicated": False,
    }
    pulled = await client.get("/artifact_pull", params=where(model))
    assert pulled.status_code == 200
    assert pulled.content == model.content
    assert pulled.headers["etag"] == f'"{model.uri}"'
    assert pulled.headers["content-length"] == str(len(model.content))
    assert "model.pkl" in pulled.headers["content-disposition"]


async def test_a_second_push_of_a_stored_artifact_is_deduplicated(
    client: httpx.AsyncClient, recorded: dict[str, Recorded]
) -> None:
    data = recorded["Dataset artifacts/data.xml"]
    first = await client.post("/artifact_push", params=where(data), content=data.content)
    assert first.status_code == 201
    again = await client.post("/artifact_push", params=where(data), content=data.content)
    assert again.status_code == 200
    assert again.json()["deduplicated"] is True


async def test_a_body_that_is_not_the_artifact_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, recorded: dict[str, Recorded]
) -> None:
    train = recorded["Dataset artifacts/parsed/train.tsv"]
    answer = await client.post("/artifact_push", params=where(train), content=b"other bytes")
    assert_problem(answer, 409, "digest_mismatch")
    assert_problem(await client.get("/artifact_pull", params=where(train)), 404, "blob_not_found")
    assert (await client.head(f"/api/native/v1/blobs/{train.uri}")).status_code == 404


async def test_a_metrics_artifact_has_no_bytes(
    client: httpx.AsyncClient, recorded: dict[str, Recorded]
) -> None:
    metrics = next(r for r in recorded.values() if r.type == "Metrics")
    answer = await client.post("/artifact_push", params=where(metrics), content=b"x")
    assert_problem(answer, 422, "artifact_without_bytes")


@pytest.mark.parametrize(
    ("pipeline", "name", "status", "code"),
    [
        ("no-such-pipeline", "artifacts/data.xml:0123", 404, "pipeline_not_found"),
        (PIPELINE, "artifacts/none.csv:" + "0" * 32, 404, "artifact_not_found"),
        (PIPELINE, "../etc/passwd:" + "0" * 32, 422, "invalid_name"),
        (PIPELINE, "/etc/passwd:" + "0" * 32, 422, "invalid_name"),
    ],
)
async def test_unknown_or_unsafe_names_are_refused(
    client: httpx.AsyncClient, pipeline: str, name: str, status: int, code: str
) -> None:
    query = {"pipeline_name": pipeline, "artifact_name": name}
    assert_problem(await client.post("/artifact_push", params=query, content=b"x"), status, code)
    assert_problem(await client.get("/artifact_pull", params=query), status, code)


async def test_a_name_with_nul_is_refused(client: httpx.AsyncClient) -> None:
    query = {"pipeline_name": PIPELINE, "artifact_name": "a\x00b"}
    answer = await client.post("/artifact_push", params=query, content=b"x")
    assert answer.status_code == 422


async def test_a_missing_parameter_is_422(client: httpx.AsyncClient) -> None:
    answer = await client.post("/artifact_push", params={"pipeline_name": PIPELINE}, content=b"x")
    assert_problem(answer, 422, "invalid")


async def test_a_blob_is_put_headed_and_read_by_range(client: httpx.AsyncClient) -> None:
    data = os.urandom(100_000)
    url = f"/api/native/v1/blobs/{md5(data)}"
    put = await client.put(url, content=data)
    assert put.status_code == 201, put.text
    assert put.json()["size"] == len(data)
    head = await client.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    ranged = await client.get(url, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206
    assert ranged.content == data[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = await client.get(url, headers={"Range": "bytes=-10"})
    assert tail.content == data[-10:]
    past = await client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert_problem(past, 416, "range_not_satisfiable")
    assert past.headers["content-range"] == f"bytes */{len(data)}"
    cached = await client.get(url, headers={"If-None-Match": f'"{md5(data)}"'})
    assert cached.status_code == 304


async def test_a_put_of_a_stored_blob_answers_before_reading_the_body(
    services: Running,
) -> None:
    data = os.urandom(1000)
    url = f"/api/native/v1/blobs/{md5(data)}"
    assert (await services.artifacts.put(url, content=data)).status_code == 201
    app = services.artifacts._transport.app  # type: ignore[attr-defined]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"artifacts"),
            (b"content-length", b"1000"),
            (b"expect", b"100-continue"),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("artifacts", 80),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 200


async def test_a_wrong_digest_is_refused(client: httpx.AsyncClient) -> None:
    assert_problem(
        await client.put("/api/native/v1/blobs/nothex", content=b"x"), 422, "invalid_digest"
    )
    answer = await client.put(f"/api/native/v1/blobs/{md5(b'y')}", content=b"x")
    assert_problem(answer, 409, "digest_mismatch")
    assert (await client.head(f"/api/native/v1/blobs/{md5(b'y')}")).status_code == 404


async def test_stored_flags_of_digests(client: httpx.AsyncClient) -> None:
    data = os.urandom(50)
    await client.put(f"/api/native/v1/blobs/{md5(data)}", content=data)
    answer = await client.post(
        "/api/native/v1/blobs/stored", json={"digests": [md5(data), "f" * 32]}
    )
    assert answer.json() == {"stored": [md5(data)]}


async def test_a_session_takes_parts_and_completes(client: httpx.AsyncClient) -> None:
    data = os.urandom(3000)
    begun = await client.post("/api/native/v1/uploads", json={"digest": md5(data)})
    assert begun.status_code == 201, begun.text
    session = begun.json()["session"]["id"]
    base = f"/api/native/v1/uploads/{session}"
    for number, start in ((1, 0), (2, 1000), (3, 2000)):
        part = await client.put(f"{base}/parts/{number}", content=data[start : start + 1000])
        assert part.status_code == 200, part.text
    listed = (await client.get(base)).json()["parts"]
    assert [p["number"] for p in listed] == [1, 2, 3]
    unordered = await client.post(
        f"{base}/complete", json={"parts": [{"number": 2}, {"number": 1}]}
    )
    assert_problem(unordered, 422, "invalid_parts")
    missing = await client.post(f"{base}/complete", json={"parts": [{"number": 1}, {"number": 4}]})
    assert_problem(missing, 422, "invalid_parts")
    done = await client.post(
        f"{base}/complete",
        json={
            "parts": [
                {"number": n, "etag": p["etag"]} for n, p in zip((1, 2, 3), listed, strict=True)
            ]
        },
    )
    assert done.status_code == 201, done.text
    assert (await client.get(f"/api/native/v1/blobs/{md5(data)}")).content == data
    assert_problem(await client.get(base), 404, "session_not_found")
    again = await client.post("/api/native/v1/uploads", json={"digest": md5(data)})
    assert again.status_code == 200 and again.json()["stored"] is True


async def test_a_session_whose_parts_are_not_the_digest_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    claimed = md5(b"claimed")
    begun = await client.post("/api/native/v1/uploads", json={"digest": claimed})
    base = f"/api/native/v1/uploads/{begun.json()['session']['id']}"
    await client.put(f"{base}/parts/1", content=b"something else")
    answer = await client.post(f"{base}/complete", json={"parts": [{"number": 1}]})
    assert_problem(answer, 409, "digest_mismatch")
    assert (await client.head(f"/api/native/v1/blobs/{claimed}")).status_code == 404


async def test_an_aborted_session_is_gone(client: httpx.AsyncClient) -> None:
    begun = await client.post("/api/native/v1/uploads", json={"digest": md5(b"gone")})
    base = f"/api/native/v1/uploads/{begun.json()['session']['id']}"
    await client.put(f"{base}/parts/1", content=b"go")
    assert (await client.delete(base)).status_code == 204
    assert_problem(await client.get(base), 404, "session_not_found")
    assert_problem(await client.put(f"{base}/parts/1", content=b"go"), 404, "session_not_found")


async def test_bad_part_numbers_and_sessions_are_refused(client: httpx.AsyncClient) -> None:
    begun = await client.post("/api/native/v1/uploads", json={"digest": md5(b"n")})
    base = f"/api/native/v1/uploads/{begun.json()['session']['id']}"
    assert_problem(await client.put(f"{base}/parts/0", content=b"n"), 422, "invalid_part_number")
    assert_problem(
        await client.put(f"{base}/parts/10001", content=b"n"), 422, "invalid_part_number"
    )
    assert (await client.get("/api/native/v1/uploads/not-a-uuid")).status_code == 422
    assert_problem(await client.get(f"{base}/parts/1/url"), 422, "presign_unsupported")


async def test_a_session_survives_a_restart(database_url: str, tmp_path: Path) -> None:
    data = os.urandom(2000)
    settings = artifact_settings(database_url, tmp_path / "restart")
    async with running(settings) as first:
        begun = await first.artifacts.post("/api/native/v1/uploads", json={"digest": md5(data)})
        base = f"/api/native/v1/uploads/{begun.json()['session']['id']}"
        await first.artifacts.put(f"{base}/parts/1", content=data[:1000])
    async with running(settings) as second:
        assert [p["number"] for p in (await second.artifacts.get(base)).json()["parts"]] == [1]
        await second.artifacts.put(f"{base}/parts/2", content=data[1000:])
        done = await second.artifacts.post(
            f"{base}/complete", json={"parts": [{"number": 1}, {"number": 2}]}
        )
        assert done.status_code == 201, done.text


async def test_the_metadata_answers_say_which_artifacts_are_stored(
    services: Running, recorded: dict[str, Recorded]
) -> None:
    label = recorded["Label artifacts/labels.csv"]
    pushed = await services.artifacts.post(
        "/artifact_push", params=where(label), content=label.content
    )
    assert pushed.status_code in (200, 201)
    seed = (await services.metadata.get("/artifacts", params={"limit": 100})).json()["items"]
    stored = {item["uri"]: item["stored"] for item in seed}
    assert stored[label.uri] is True
    assert stored[recorded["Dataset artifacts/parsed/train.tsv"].uri] is False
    listed = await services.metadata.get("/api/native/v1/artifacts", params={"uri": label.uri})
    [item] = listed.json()["items"]
    assert item["stored"] is True
    one = await services.metadata.get(f"/api/native/v1/artifacts/{item['id']}")
    assert one.json()["stored"] is True


def _manifest(files: dict[str, bytes]) -> bytes:
    """A directory's DVC 3 manifest: its files' md5s and paths, by path, as DVC writes it."""
    entries = [{"md5": md5(content), "relpath": path} for path, content in sorted(files.items())]
    return json.dumps(entries, sort_keys=True).encode()


async def test_a_directory_is_pushed_and_pulled_as_its_manifest_then_file_by_file(
    services: Running, recorded: dict[str, Recorded]
) -> None:
    files = {"a.txt": b"first file\n", "sub/b.bin": os.urandom(5000)}
    manifest = _manifest(files)
    dir_uri = md5(manifest) + ".dir"
    payload, _ = pipeline_with_bytes()
    dataset = recorded["Dataset artifacts/data.xml"]
    text = json.dumps(payload).replace(dataset.uri, dir_uri).replace(PIPELINE, "Dir-env")
    pushed = await services.metadata.post(
        "/api/mlmd_push", json=push_body(json.loads(text), "Dir-env")
    )
    assert pushed.json() == {"status": "success"}, pushed.text
    query = {
        "pipeline_name": "Dir-env",
        "artifact_name": dataset.name.replace(dataset.uri, dir_uri),
    }
    client = services.artifacts
    wrong = await client.post("/artifact_push", params=query, content=manifest + b" ")
    assert_problem(wrong, 409, "digest_mismatch")
    answer = await client.post("/artifact_push", params=query, content=manifest)
    assert answer.status_code == 201, answer.text
    assert answer.json()["uri"] == dir_uri and answer.json()["md5"] == md5(manifest)
    for content in files.values():
        put = await client.put(f"/api/native/v1/blobs/{md5(content)}", content=content)
        assert put.status_code == 201, put.text

    pulled = await client.get("/artifact_pull", params=query)
    assert pulled.status_code == 200, pulled.text
    assert pulled.content == manifest
    assert pulled.headers["etag"] == f'"{md5(manifest)}"'  # the md5, as for any blob
    for entry in json.loads(pulled.content):
        one = await client.get(f"/api/native/v1/blobs/{entry['md5']}")
        assert one.content == files[entry["relpath"]]


async def test_a_body_over_the_limit_is_413_and_nothing_is_stored(
    database_url: str, tmp_path: Path, recorded: dict[str, Recorded]
) -> None:
    settings = artifact_settings(database_url, tmp_path / "small", max_blob_bytes=1000)
    train = recorded["Dataset artifacts/parsed/train.tsv"]
    assert len(train.content) > 1000
    data = os.urandom(2000)

    def chunked() -> Any:
        async def body() -> AsyncIterator[bytes]:
            for start in range(0, len(data), 500):
                yield data[start : start + 500]

        return body()

    async with running(settings) as small:
        client = small.artifacts
        declared = await client.put(f"/api/native/v1/blobs/{md5(data)}", content=data)
        assert_too_large(declared)
        streamed = await client.put(f"/api/native/v1/blobs/{md5(data)}", content=chunked())
        assert_too_large(streamed)
        assert (await client.head(f"/api/native/v1/blobs/{md5(data)}")).status_code == 404
        pushed = await client.post("/artifact_push", params=where(train), content=train.content)
        assert_too_large(pushed)
        assert (await client.head(f"/api/native/v1/blobs/{train.uri}")).status_code == 404


def assert_too_large(answer: httpx.Response) -> None:
    """A 413 in problem+json: the body limit's own (a declared length, or once the stream
    passes it) or the store's, whichever saw it first."""
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] in ("payload_too_large", "blob_too_large")
