"""TensorBoard through the server: ``cmf-server up`` runs it over the uploaded logs (the
``tensorboard`` extra is in the test venv) and serves it under ``/tensorboard/``; the UI's
TensorBoard view of a pipeline points there. Embedded server only: no shared service."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from cmf_testing.generator import push_body
from cmf_testing.network import free_port
from cmf_testing.servers import start_server
from cmf_testing.waiting import eventually

PIPELINE = "Board"


def _event_file(folder: Path) -> Path:
    """A TensorBoard log of a ``loss`` scalar over three steps, written as TensorFlow would."""
    writer = EventFileWriter(str(folder))
    for step, loss in enumerate((0.9, 0.5, 0.25)):
        value = summary_pb2.Summary.Value(tag="loss", simple_value=loss)
        writer.add_event(
            event_pb2.Event(
                wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[value])
            )
        )
    writer.close()
    (written,) = folder.glob("events.out.tfevents.*")
    return written


def test_uploaded_logs_are_served_by_tensorboard_under_the_server(tmp_path: Path) -> None:
    with start_server(tmp_path, free_port(), {"TENSORBOARD": "true"}) as server:
        base = server.base_url
        pushed = httpx.post(f"{base}/api/mlmd_push", json=push_body(PIPELINE, 1), timeout=60)
        assert pushed.json() == {"status": "success"}, pushed.text
        log = _event_file(tmp_path / "logs")
        uploaded = httpx.post(
            f"{base}/tensorboard",
            params={"pipeline_name": PIPELINE},
            files={"file": (f"run-1/{log.name}", log.read_bytes())},
            timeout=60,
        )
        assert uploaded.status_code == 200, uploaded.text

        view = httpx.get(
            f"{base}/api/native/v1/views/tensorboard", params={"pipeline": PIPELINE}, timeout=30
        ).json()
        assert view["configured"] is True and view["url"] == "/tensorboard/", view
        assert [f["path"] for f in view["files"]] == [f"run-1/{log.name}"]

        def page() -> None:
            answer = httpx.get(f"{base}/tensorboard/", timeout=30)
            assert answer.status_code == 200, answer.text[:300]
            assert "<tf-tensorboard" in answer.text or "TensorBoard" in answer.text

        eventually(page, timeout=60, interval=0.5)

        def scalars() -> None:
            tags = httpx.get(f"{base}/tensorboard/data/plugin/scalars/tags", timeout=30)
            assert tags.status_code == 200, tags.text[:300]
            assert "loss" in tags.json().get(f"{PIPELINE}/run-1", {}), tags.text[:300]

        eventually(scalars, timeout=60, interval=1.0)
        points = httpx.get(
            f"{base}/tensorboard/data/plugin/scalars/scalars",
            params={"run": f"{PIPELINE}/run-1", "tag": "loss"},
            timeout=30,
        ).json()
        assert [round(p[2], 2) for p in points] == [0.9, 0.5, 0.25]

        refused = httpx.get(f"{base}/tensorboard/", headers={"Host": "evil.example"}, timeout=30)
        assert refused.status_code == 421, "the proxy keeps the gateway's Host check"
