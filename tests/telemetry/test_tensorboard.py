"""TensorBoard through the server: ``cmf-server up`` runs it over the uploaded logs (the
``tensorboard`` extra is in the test venv) and serves it under ``/tensorboard/``; the UI's
TensorBoard view of a pipeline points there. Embedded server only: no shared service."""

from __future__ import annotations

from pathlib import Path

import httpx

from cmf_testing.generator import push_body
from cmf_testing.network import free_port
from cmf_testing.servers import start_server
from cmf_testing.tensorboard import scalar_log, served_scalars

PIPELINE = "Board"


def test_uploaded_logs_are_served_by_tensorboard_under_the_server(tmp_path: Path) -> None:
    with start_server(tmp_path, free_port(), {"TENSORBOARD": "true"}) as server:
        base = server.base_url
        pushed = httpx.post(f"{base}/api/mlmd_push", json=push_body(PIPELINE, 1), timeout=60)
        assert pushed.json() == {"status": "success"}, pushed.text
        log = scalar_log(tmp_path / "logs", "loss", (0.9, 0.5, 0.25))
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

        served = served_scalars(f"{base}/tensorboard/", f"{PIPELINE}/run-1", "loss")
        assert [round(v, 2) for v in served] == [0.9, 0.5, 0.25]

        refused = httpx.get(f"{base}/tensorboard/", headers={"Host": "evil.example"}, timeout=30)
        assert refused.status_code == 421, "the proxy keeps the gateway's Host check"
