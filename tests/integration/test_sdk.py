"""The Python SDK (libs/client) against the embedded server loaded by the real client.

The real ``cmf`` client logs tests/client/pipeline.py's pipeline and pushes it; then
``ServerQuery`` is asked CmfQuery's questions beside ``CmfQuery`` on the client's own mlmd
(tests/client/compare_query.py, in the client's venv, where the SDK sits beside cmflib), the
example notebook runs in that venv's kernel, and ``Client`` / ``AsyncClient`` are checked here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cmf_client import REPO, CmfClient, Workspace, make_cmf_client

from cmf_server_client import AsyncClient, Client, ServerQuery, errors

pytestmark = pytest.mark.client

PIPELINE = "Client-Test"
SDK_SOURCE = REPO / "libs" / "client" / "src"
NOTEBOOK = REPO / "docs" / "sdk-example.ipynb"


@pytest.fixture(scope="module")
def cmf_client(tmp_path_factory: pytest.TempPathFactory, module_server: str) -> CmfClient:
    """The real client's venv, with the SDK from this tree on its path, as a team has both."""
    client = make_cmf_client(tmp_path_factory.mktemp("cmf-client"))
    env = {**client.env, "PYTHONPATH": str(SDK_SOURCE), "CMF_SERVER_URL": module_server}
    return dataclasses.replace(client, env=env)


@pytest.fixture(scope="module")
def pushed(cmf_client: CmfClient, module_server: str) -> Workspace:
    """The two-stage pipeline, logged and pushed with ``cmf metadata push``."""
    folder = cmf_client.scratch / "workspace"
    cmf_client.init(folder, module_server)
    result = cmf_client.script("pipeline.py", "--pipeline", PIPELINE, cwd=folder)
    output = cmf_client.cmf("metadata", "push", "-p", PIPELINE, cwd=folder)
    assert "successfully pushed" in output, output
    return Workspace(folder, PIPELINE, result["executions"])


@pytest.fixture(scope="module")
def client(module_server: str, pushed: Workspace) -> Iterator[Client]:
    with Client(module_server, timeout=30) as client:
        yield client


def _artifact(client: Client, type_name: str, file_name: str) -> dict[str, Any]:
    found = [
        a
        for a in client.artifacts(pipeline=PIPELINE, type=type_name)
        if a["name"].split(":", 1)[0].endswith(file_name)
    ]
    assert len(found) == 1, found
    return found[0]


def test_server_query_answers_as_cmfquery_does_on_the_local_mlmd(
    cmf_client: CmfClient, pushed: Workspace, module_server: str
) -> None:
    answer = cmf_client.script(
        "compare_query.py", str(pushed.folder / "mlmd"), module_server, cwd=pushed.folder
    )
    assert answer["differences"] == []
    assert answer["asked"] >= 64


def test_the_example_notebook_runs_against_the_server(
    cmf_client: CmfClient, pushed: Workspace, tmp_path: Path
) -> None:
    answer = cmf_client.script(
        "run_notebook.py", str(NOTEBOOK), str(tmp_path / "executed.ipynb"), cwd=tmp_path
    )
    assert answer["errors"] == []
    # the pipeline, the lineage and the execution draw themselves, each linking to the UI
    assert answer["svg"] >= 3
    assert answer["links"] >= 3


def test_upstream_of_the_model_reaches_the_raw_data(client: Client) -> None:
    model = _artifact(client, "Model", "model.pkl")
    lineage = client.upstream(model["id"])
    names = {n["name"] for n in lineage.artifacts()}
    assert any(n.startswith("artifacts/data.xml:") for n in names), names
    assert any(n.startswith("artifacts/parsed/train.tsv:") for n in names), names
    assert lineage["root"] == f"artifact:{model['id']}"
    assert not lineage.partial
    # The same walk in the web UI's lineage explorer (the link its notebook picture carries).
    assert lineage.ui_url == (
        f"{client.url}/ui/p/{PIPELINE}/explorer?focus=artifact%3A{model['id']}&dir=upstream"
        f"&depth=20&sel=artifact%3A{model['id']}"
    )
    page = httpx.get(lineage.ui_url, timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    only_datasets = client.upstream(model["id"], types=["Dataset"])
    assert {n["type"] for n in only_datasets.artifacts()} == {"Dataset"}


def test_downstream_of_the_raw_data_reaches_the_model(client: Client) -> None:
    raw = _artifact(client, "Dataset", "data.xml")
    one_hop = client.downstream(raw["id"], depth=1)
    everything = client.downstream(raw["id"])
    assert not any(n["type"] == "Model" for n in one_hop.artifacts())
    assert any(n["type"] == "Model" for n in everything.artifacts())
    by_uri = client.lineage(uri=raw["uri"], direction="downstream")
    assert by_uri["nodes"] == everything["nodes"]


def test_max_nodes_cuts_the_walk_and_the_cursor_goes_on(client: Client) -> None:
    raw = _artifact(client, "Dataset", "data.xml")
    page = client.downstream(raw["id"], max_nodes=2)
    assert page.partial and page["next_cursor"]
    seen = {n["id"] for n in page.nodes}
    for _ in range(20):
        if not page["next_cursor"]:
            break
        page = client.lineage(
            raw["id"], direction="downstream", max_nodes=2, cursor=page["next_cursor"]
        )
        seen |= {n["id"] for n in page.nodes}
    assert seen == {n["id"] for n in client.downstream(raw["id"]).nodes}


def test_an_executions_ancestry_holds_the_execution_before_it(
    client: Client, pushed: Workspace
) -> None:
    train = client.execution_by_uuid(pushed.executions["Train"])
    assert train["stage"] == f"{PIPELINE}/Train"
    assert {e["kind"] for e in train["events"]} == {"INPUT", "OUTPUT"}
    ancestry = client.ancestry(pushed.executions["Train"])
    assert pushed.executions["Prepare"] in {n.get("uuid") for n in ancestry.executions()}
    query = ServerQuery(client=client)
    parents, links = query.get_all_parent_executions_by_id([train["id"]])
    assert [p[2] for p in parents] == [pushed.executions["Prepare"]]
    assert links == [{"source": parents[0][0], "target": train["id"]}]


def test_lists_page_with_the_native_filters(client: Client, pushed: Workspace) -> None:
    every = [x["uuid"] for x in client.executions(pipeline=PIPELINE, page_size=1)]
    assert sorted(every) == sorted(pushed.executions.values())
    train = list(client.executions(stage=f"{PIPELINE}/Train", properties={"max_depth": 3}))
    assert [x["uuid"] for x in train] == [pushed.executions["Train"]]
    newest_first = [x["id"] for x in client.executions(pipeline=PIPELINE, sort="-id")]
    assert newest_first == sorted(newest_first, reverse=True)
    models = list(client.artifacts(pipeline=PIPELINE, type="Model", page_size=1))
    assert len(models) == 1
    pipeline = client.pipeline(PIPELINE)
    assert pipeline["stage_count"] == 2
    assert [s["name"] for s in pipeline["stages"]] == [f"{PIPELINE}/Prepare", f"{PIPELINE}/Train"]
    assert "<svg" in pipeline._repr_html_()


def test_the_model_card_has_its_four_tables(client: Client) -> None:
    model = _artifact(client, "Model", "model.pkl")
    card = client.model_card(model["id"])
    assert [row["id"] for row in card["model"]] == [model["id"]]
    assert card["executions"] and card["inputs"]
    assert "<table>" in card._repr_html_()


def test_the_servers_errors_arrive_typed_with_its_message(client: Client) -> None:
    with pytest.raises(errors.NotFound) as caught:
        client.artifact(10**12)
    assert caught.value.code == "artifact_not_found"
    assert caught.value.trace_id
    with pytest.raises(errors.NotFound, match="Pipeline nowhere not found"):
        client.pipeline("nowhere")
    with pytest.raises(errors.UnprocessableEntity) as invalid:
        client.lineage(1, depth=1000)
    assert invalid.value.code == "invalid"
    assert client.health()["status"] in ("ok", "degraded")


async def test_the_async_client_answers_the_same(client: Client, module_server: str) -> None:
    model = _artifact(client, "Model", "model.pkl")
    async with AsyncClient(module_server) as aclient:
        names = [p["name"] async for p in aclient.pipelines()]
        lineage = await aclient.upstream(model["id"])
        with pytest.raises(errors.NotFound):
            await aclient.execution(10**12)
    assert names == [PIPELINE]
    assert lineage["nodes"] == client.upstream(model["id"])["nodes"]


# Artifact bytes, through the artifact service the embedded server mounts.


@pytest.fixture(scope="module")
def stored(client: Client, pushed: Workspace) -> dict[str, Any]:
    """The model, the raw data and the step metrics, uploaded with the SDK from the client's
    workspace; the server's answers by file name."""
    answers: dict[str, Any] = {}
    for type_name, file_name in (
        ("Model", "model.pkl"),
        ("Dataset", "data.xml"),
        ("Step_Metrics", "training_metrics"),
    ):
        artifact = _artifact(client, type_name, file_name)
        source = pushed.folder / artifact["name"].split(":", 1)[0]
        answers[file_name] = client.upload(source, PIPELINE, artifact["name"])
    return answers


def test_an_uploaded_artifact_downloads_byte_for_byte(
    client: Client, pushed: Workspace, stored: dict[str, Any], tmp_path: Path
) -> None:
    model = _artifact(client, "Model", "model.pkl")
    source = pushed.folder / "artifacts" / "model" / "model.pkl"
    assert stored["model.pkl"]["md5"] == model["uri"]
    assert stored["model.pkl"]["deduplicated"] is False
    assert client.upload(source, PIPELINE, model["name"])["deduplicated"] is True
    progress: list[tuple[int, int | None]] = []
    target = client.download(
        PIPELINE,
        model["name"],
        tmp_path,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert target == tmp_path / "model.pkl"
    assert target.read_bytes() == source.read_bytes()
    assert progress[-1] == (source.stat().st_size, source.stat().st_size)
    blob = client.download_blob(model["uri"], tmp_path / "by-digest")
    assert blob.read_bytes() == source.read_bytes()
    assert client.artifact(model["id"])["stored"] is True
    assert client.has_blob(model["uri"])


def test_an_upload_of_other_bytes_is_refused_and_nothing_is_stored(
    client: Client, stored: dict[str, Any], tmp_path: Path
) -> None:
    raw = _artifact(client, "Dataset", "train.tsv")
    wrong = tmp_path / "train.tsv"
    wrong.write_text("not the recorded bytes\n")
    with pytest.raises(errors.Conflict):
        client.upload(wrong, PIPELINE, raw["name"])
    assert not client.has_blob(raw["uri"])
    with pytest.raises(errors.NotFound):
        client.download(PIPELINE, raw["name"], tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_blob_is_sent_once(client: Client, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"a blob of its own\n" * 1000)
    first = client.upload_blob(source)
    assert first["deduplicated"] is False and first["size"] == source.stat().st_size
    assert client.upload_blob(source)["deduplicated"] is True


def test_get_metrics_reads_the_stored_parquet(
    cmf_client: CmfClient, pushed: Workspace, stored: dict[str, Any], module_server: str
) -> None:
    """In the client's venv (pyarrow is there): the frame the server's bytes hold is the one
    the local parquet file holds."""
    code = (
        "import json, pandas as pd\n"
        "from cmf_server_client import ServerQuery\n"
        f"query = ServerQuery({module_server!r})\n"
        "name = next(n for n in query.get_all_artifacts() if 'training_metrics' in n)\n"
        "frame = query.get_metrics(name)\n"
        "local = pd.read_parquet(name.split(':', 1)[0])\n"
        "print(json.dumps({'same': bool(frame.equals(local)), 'rows': len(frame),"
        " 'missing': query.get_metrics('no such metrics') is None}))\n"
    )
    done = cmf_client.run([str(cmf_client.venv / "bin" / "python"), "-c", code], pushed.folder)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "same": True,
        "rows": 3,
        "missing": True,
    }
