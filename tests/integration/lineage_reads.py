"""Lineage reads right after a push, without a token, on every lineage route: what
test_lineage_through_gateway runs on the embedded server and the one-process distributed server,
and test_distributed on the stack of separate processes (docs: README, "Lineage is read-after-write
consistent")."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from cmf_common.metadata_events import INPUT, OUTPUT
from cmf_testing.generator import push_body

TOKEN = "X-CMF-Consistency-Token"


def push(client: httpx.Client, body: dict[str, Any]) -> str:
    """Push ``body``; the consistency token of its write."""
    answer = client.post("/api/mlmd_push", json=body)
    assert answer.status_code == 200 and answer.json() == {"status": "success"}, answer.text
    return answer.headers[TOKEN]


def get(client: httpx.Client, path: str, token: str | None = None, **params: Any) -> Any:
    answer = client.get(path, params=params, headers={TOKEN: token} if token else {})
    assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:300]}"
    return answer.json()


def data(client: httpx.Client, path: str) -> Any:
    """The ``data`` of a v1 answer that must be a success."""
    body = get(client, path)
    assert body["status"] == "success", f"{path}: {body}"
    return body["data"]


def lineage_reads(
    client: httpx.Client, name: str, body: dict[str, Any]
) -> list[tuple[str, Callable[[], Any]]]:
    """Every lineage route of pipeline ``name`` just pushed with ``body``, each a read that checks
    its answer shows the push (never a 404, never an empty tree). Their inputs come from the
    body, so no other request stands between the push and the first lineage read."""
    v1 = f"/v1/pipelines/{name}"
    inputs, outputs, uuids = _pushed(body)
    source = min(inputs - outputs)  # a Dataset step 1 reads and nothing wrote
    last = min(outputs - inputs)  # a Dataset step 2 wrote and nothing reads
    # The execution trees take a uuid's first four characters, as the reference UI sends them.
    execution = uuids[0][:4]

    def tree(path: str, shown: Callable[[Any], bool]) -> Callable[[], Any]:
        def read() -> Any:
            found = data(client, path) if "v1/" in path else get(client, path)
            assert shown(found), (path, found)
            return found

        return read

    ids: list[int] = []

    def walk(path: str) -> Callable[[], Any]:
        def read() -> Any:
            if not ids:  # a walk takes the metadata id, asked of the metadata store
                listed = get(client, "/api/native/v1/artifacts", pipeline=name, limit=100)
                ids.extend(a["id"] for a in listed["items"] if a["uri"] == source[1])
            found = get(client, path.format(id=ids[0]))
            assert [n for n in found["nodes"] if n["kind"] == "execution"], (path, found)
            return found

        return read

    def question(artifact: str, asked: str, key: str) -> Callable[[], Any]:
        def read() -> Any:
            found = data(client, f"/api/v1/artifacts/name/{artifact}/{asked}")
            assert found[key], (asked, found)
            return found

        return read

    def display() -> Any:
        found = get(client, "/display_lineage", pipeline_name=name, level="execution")
        assert [n for n in found["nodes"] if n["kind"] == "execution"], found
        return found

    reads: list[tuple[str, Callable[[], Any]]] = [
        # Two steps: a layer for the Datasets each wrote and one for the first's inputs; the
        # mixed tree has the executions' layers between them.
        ("artifact tree", tree(f"/artifact-lineage/tangled-tree/{name}", _layers(3))),
        ("v1 artifact tree", tree(f"{v1}/artifacts/lineage", _layers(3))),
        ("mixed tree", tree(f"/api/artifact-execution-lineage/tangled-tree/{name}", _more(3))),
        ("v1 mixed tree", tree(f"{v1}/artifact-executions/lineage", _more(3))),
        ("execution tree", tree(f"/execution-lineage/tangled-tree/{execution}/{name}", _first)),
        ("v1 execution tree", tree(f"/api{v1}/executions/{execution}/lineage", _first)),
        ("hierarchical", lambda: data(client, f"{v1}/hierarchical-lineage")["nodes"]),
        ("display", display),
        ("walk", walk("/lineage/{id}")),
        ("native walk", walk("/api/native/v1/lineage/artifacts/{id}")),
        ("executions", question(last[0], "executions", "executions")),
        ("producer", question(last[0], "producer-execution", "execution")),
        ("parents", question(last[0], "parents", "artifacts")),
        ("ancestors", question(last[0], "ancestors", "artifacts")),
        ("children", question(source[0], "children", "artifacts")),
        ("descendants", question(source[0], "descendants", "artifacts")),
    ]
    return reads


def _pushed(body: dict[str, Any]) -> tuple[set[tuple[str, str]], set[tuple[str, str]], list[str]]:
    """The (name, uri) of the Datasets the push's executions read, of those they wrote, and the
    executions' uuids."""
    executions = [
        execution
        for stage in json.loads(body["json_payload"])["Pipeline"][0]["stages"]
        for execution in stage["executions"]
    ]
    events = [
        (e["type"], (e["artifact"]["name"], e["artifact"]["uri"]))
        for execution in executions
        for e in execution["events"]
        if e["artifact"]["type"] == "Dataset"
    ]
    return (
        {artifact for kind, artifact in events if kind == INPUT},
        {artifact for kind, artifact in events if kind == OUTPUT},
        [str(x["properties"]["Execution_uuid"]) for x in executions],
    )


def _layers(n: int) -> Callable[[Any], bool]:
    return lambda tree: len(tree) == n


def _more(n: int) -> Callable[[Any], bool]:
    return lambda tree: len(tree) > n


def _first(tree: Any) -> bool:
    return bool(tree and tree[0])


def read_each_route_right_after_each_push(
    client: httpx.Client, pushes: int = 20, *, push_to: httpx.Client | None = None
) -> None:
    """Fresh pipelines pushed one by one (to ``push_to``, another server of the same database,
    when given), each read at once on every lineage route without a token
    (cmf_lineage.consistency). The reads' order turns with each push, so each route is the
    first read after a push at least once; the generations' twins answer alike."""
    for n in range(pushes):
        name = f"raw-{uuid.uuid4().hex[:8]}-{n}"
        body = push_body(name, 2)
        push(push_to or client, body)
        reads = lineage_reads(client, name, body)
        turn = n % len(reads)
        answers = {what: read() for what, read in reads[turn:] + reads[:turn]}
        assert answers["v1 artifact tree"] == answers["artifact tree"]
        assert answers["v1 mixed tree"] == answers["mixed tree"]
        assert answers["v1 execution tree"] == answers["execution tree"]
        assert answers["native walk"] == answers["walk"]
