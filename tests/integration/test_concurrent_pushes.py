"""Two `cmf-server up` processes on one PostgreSQL: concurrent pushes merge as a serial merge
would, and pushes of pipelines that share artifacts never deadlock."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from support import free_port, start_server

CLIENT_TIME = 1_795_723_831_678


def _artifact(kind: str, uri: str, pipeline: str, **custom: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "uri": uri,
        "name": f"data/{uri}.csv:{uri}",
        "create_time_since_epoch": CLIENT_TIME,
        "properties": {
            "Commit": uri,
            "git_repo": "/srv/repo.git",
            "url": f"{pipeline}:/srv/storage/files/md5/{uri[:2]}/{uri[2:]}",
        },
        "custom_properties": custom,
    }


def _execution(pipeline: str, stage: str, n: int, shared: list[str]) -> dict[str, Any]:
    uuid = f"{n:08d}-0000-1000-8000-{abs(hash(pipeline)) % 10**12:012d}"
    inputs = [_artifact("Dataset", uri, pipeline, source="shared") for uri in shared]
    outputs = [
        _artifact("Dataset", f"{pipeline}-out-{n}", pipeline),
        _artifact("Model", f"{pipeline}-model-{n}", pipeline),
    ]
    return {
        "type": stage.split("/")[1],
        "name": "",
        "create_time_since_epoch": CLIENT_TIME + n,
        "properties": {
            "Context_Type": stage,
            "Context_ID": 2,
            "Execution": "['train.py']",
            "Execution_type_name": stage,
            "Execution_uuid": uuid,
            "Git_Repo": "/srv/repo.git",
            "Git_Start_Commit": "abc",
            "Git_End_Commit": "",
            "Pipeline_Type": pipeline,
            "Pipeline_id": 1,
        },
        "custom_properties": {"step": n, "lr": 0.1},
        "events": [{"type": 3, "artifact": a} for a in inputs]
        + [{"type": 4, "artifact": a} for a in outputs],
    }


def push_body(pipeline: str, numbers: list[int], shared: list[str]) -> dict[str, Any]:
    stage = f"{pipeline}/Train"
    payload = {
        "Pipeline": [
            {
                "name": pipeline,
                "type": "Parent_Context",
                "create_time_since_epoch": CLIENT_TIME,
                "properties": {"Pipeline": pipeline},
                "custom_properties": {},
                "stages": [
                    {
                        "name": stage,
                        "type": "Pipeline_Stage",
                        "create_time_since_epoch": CLIENT_TIME,
                        "properties": {"Pipeline_Stage": stage},
                        "custom_properties": {},
                        "executions": [_execution(pipeline, stage, n, shared) for n in numbers],
                    }
                ],
            }
        ]
    }
    return {"exec_uuid": None, "pipeline_name": pipeline, "json_payload": json.dumps(payload)}


def merged_content(base_url: str, pipeline: str) -> dict[str, Any]:
    """What a pull says, as sets: executions by uuid, artifacts by uri, events; no server
    ids or times."""
    answer = httpx.post(f"{base_url}/api/mlmd_pull", json={"pipeline_name": pipeline}, timeout=60)
    assert answer.status_code == 200, answer.text
    executions: dict[str, Any] = {}
    artifacts: dict[str, Any] = {}
    events: set[tuple[str, str, int]] = set()
    for stage in json.loads(answer.text)["Pipeline"][0]["stages"]:
        for ex in stage["executions"]:
            uuid = ex["properties"]["Execution_uuid"]
            props = {
                k: v for k, v in ex["properties"].items() if k not in ("Context_ID", "Pipeline_id")
            }
            executions[uuid] = (
                stage["name"],
                ex["type"],
                json.dumps(props, sort_keys=True),
                json.dumps(ex["custom_properties"], sort_keys=True),
            )
            for ev in ex["events"]:
                art = ev["artifact"]
                events.add((uuid, art["uri"], ev["type"]))
                props = dict(art["properties"])
                urls = frozenset(props.pop("url", "").split(","))
                artifacts[art["uri"]] = (
                    art["type"],
                    art["name"],
                    json.dumps(props, sort_keys=True),
                    urls,
                    json.dumps(art["custom_properties"], sort_keys=True),
                )
    return {"executions": executions, "artifacts": artifacts, "events": events}


def _post_all(targets: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    def post(target: tuple[str, dict[str, Any]]) -> httpx.Response:
        return httpx.post(f"{target[0]}/api/mlmd_push", json=target[1], timeout=120)

    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        return list(pool.map(post, targets))


def test_concurrent_overlapping_pushes_equal_one_serial_merge(
    tmp_path: Path, make_database_url: Callable[[], str]
) -> None:
    pipeline = "Concurrent"
    shared = ["a1b2c3", "d4e5f6"]
    rng = random.Random(7)
    bodies = [push_body(pipeline, sorted(rng.sample(range(40), 12)), shared) for _ in range(20)]

    concurrent_db, serial_db = make_database_url(), make_database_url()
    with (
        start_server(tmp_path / "a", free_port(), {"DATABASE_URL": concurrent_db}) as first,
        start_server(tmp_path / "b", free_port(), {"DATABASE_URL": concurrent_db}) as second,
    ):
        answers = _post_all(
            [((first, second)[i % 2].base_url, body) for i, body in enumerate(bodies)]
        )
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        assert {a.json()["status"] for a in answers} <= {"success", "exists"}
        concurrent = merged_content(first.base_url, pipeline)
        assert merged_content(second.base_url, pipeline) == concurrent

    with start_server(tmp_path / "c", free_port(), {"DATABASE_URL": serial_db}) as serial:
        for body in bodies:
            assert (
                httpx.post(f"{serial.base_url}/api/mlmd_push", json=body, timeout=120).status_code
                == 200
            )
        assert merged_content(serial.base_url, pipeline) == concurrent


def test_concurrent_pushes_of_pipelines_sharing_datasets_do_not_deadlock(
    tmp_path: Path, make_database_url: Callable[[], str]
) -> None:
    database = make_database_url()
    shared = [f"{n:02d}shared{n:026d}" for n in range(30)]
    rng = random.Random(11)
    targets: list[tuple[str, dict[str, Any]]] = []
    with (
        start_server(tmp_path / "a", free_port(), {"DATABASE_URL": database}) as first,
        start_server(tmp_path / "b", free_port(), {"DATABASE_URL": database}) as second,
    ):
        for i in range(20):
            pipeline = f"Shared-{i % 10}"
            # Each push lists the shared datasets in its own order: a naive merge would lock
            # them in that order and deadlock against its neighbours.
            order = shared[:]
            rng.shuffle(order)
            numbers = list(range(i // 10 * 5, i // 10 * 5 + 5))
            targets.append(((first, second)[i % 2].base_url, push_body(pipeline, numbers, order)))
        answers = _post_all(targets)
        assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers]
        assert {a.json()["status"] for a in answers} == {"success"}
        content = merged_content(first.base_url, "Shared-3")
        assert len(content["executions"]) == 10
        urls = content["artifacts"][shared[0]][3]
        assert {u.split(":")[0] for u in urls} == {f"Shared-{i}" for i in range(10)}
