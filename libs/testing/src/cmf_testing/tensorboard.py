"""TensorBoard logs as TensorFlow writes them, for the tests that upload or serve them (the
``tensorboard`` package is imported here only, so ``cmf_testing`` does not need it)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from cmf_testing.waiting import eventually


def scalar_log(folder: Path, tag: str, values: Sequence[float]) -> Path:
    """An event file in ``folder`` holding scalar ``tag`` at steps 0, 1, ...; its path."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder))
    for step, value in enumerate(values):
        point = summary_pb2.Summary.Value(tag=tag, simple_value=value)
        event = event_pb2.Event(
            wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[point])
        )
        writer.add_event(event)
    writer.close()
    (written,) = folder.glob("events.out.tfevents.*")
    return written


def served_scalars(board: str, run: str, tag: str, *, timeout: float = 60.0) -> list[float]:
    """The values of scalar ``tag`` of ``run`` that the TensorBoard at ``board`` (its page's
    URL, ``.../tensorboard/``) serves, once its page loads and the run has the tag."""

    def page() -> None:
        answer = httpx.get(board, timeout=30)
        assert answer.status_code == 200, answer.text[:300]
        assert "<tf-tensorboard" in answer.text or "TensorBoard" in answer.text

    eventually(page, timeout=timeout, interval=0.5)

    def tagged() -> None:
        tags = httpx.get(f"{board}data/plugin/scalars/tags", timeout=30)
        assert tags.status_code == 200, tags.text[:300]
        assert tag in tags.json().get(run, {}), tags.text[:300]

    eventually(tagged, timeout=timeout, interval=0.5)
    points = httpx.get(
        f"{board}data/plugin/scalars/scalars", params={"run": run, "tag": tag}, timeout=30
    ).json()
    return [float(p[2]) for p in points]
