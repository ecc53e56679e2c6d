"""The short display names the reference UI's lineage trees show (docs/wire-contract.md §1.5)."""

from __future__ import annotations

import posixpath


def _parts(name: str) -> list[str]:
    return name.split(":")


def artifact_display_name(type_: str, name: str, uri: str) -> str:
    """``basename:hash4`` for files; the reference's own forms for metrics and slices."""
    parts = _parts(name)
    path = parts[0]
    if type_ == "Metrics":
        # name:uuid1:execid -> name:uuid4:execid
        execution = parts[2] if len(parts) > 2 else ""
        return f"{path}:{uri[:4]}:{execution}"
    if type_ == "Step_Metrics":
        # cmf_artifacts/<exec_uuid>/metrics/<name>:md5:execid:uuid1
        short = path.removeprefix("cmf_artifacts/")
        digest = parts[1][:4] if len(parts) > 1 else uri[:4]
        execution = parts[2] if len(parts) > 2 else ""
        metric_uuid = parts[3][:4] if len(parts) > 3 else ""
        return f"{short}:{digest}:{execution}:{metric_uuid}"
    if type_ == "Dataslice":
        return f"{path.removeprefix('cmf_artifacts/')}:{uri[:4]}"
    return f"{posixpath.basename(path) or path}:{uri[:4]}"


def execution_display_name(context_type: str, uuid: str) -> str:
    """``<stage after the pipeline>_<uuid4>``, as the execution tree names executions."""
    stage = context_type.split("/", 1)[1] if "/" in context_type else context_type
    return f"{stage}_{uuid[:4]}"
