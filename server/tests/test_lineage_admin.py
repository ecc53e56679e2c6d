"""``cmf-server lineage rebuild|verify`` from a data dir reads the metadata service's export API
in-process (never its tables): every line of ``GET /api/native/v1/export``, page after page."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from cmf_metadata.app import create_app as create_metadata
from cmf_metadata.settings import MetadataSettings
from cmf_server import lineage_admin


async def test_the_in_process_export_reads_every_page_of_the_export_api(
    make_database_url: Callable[[], str], fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = MetadataSettings(database_url=SecretStr(make_database_url()))
    example = (fixtures_dir / "push_example.json").read_text()
    app = create_metadata(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as client,
    ):
        for name in ("first", "second"):
            body = json.loads(example.replace('"Test-env', f'"{name}'))
            assert (await client.post("/api/mlmd_push", json=body)).json()["status"] == "success"
        answer = await client.get("/api/native/v1/export", params={"limit": 1000})
        expected = [json.loads(line) for line in answer.text.splitlines() if line.strip()]

    monkeypatch.setattr(lineage_admin, "IN_PROCESS_PAGE_LINES", 3)
    read = [e async for e in lineage_admin.in_process_export(settings)()]
    assert len(expected) > 3
    assert [(e.type, e.subject, e.seq, e.data) for e in read] == [
        (e["type"], e["subject"], e["seq"], e["data"]) for e in expected
    ]
