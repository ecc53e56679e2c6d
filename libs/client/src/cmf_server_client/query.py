"""``ServerQuery``: cmflib's ``CmfQuery`` questions asked of a server instead of a local MLMD
file, with ``CmfQuery``'s method names and the same pandas DataFrame columns.

Rows are built as ``CmfQuery`` builds them: an execution is ``id``, ``name``, its properties
under their own names and its custom properties prefixed ``custom_properties_``; an artifact is
``id``, ``type``, ``uri``, ``name``, ``create_time_since_epoch``,
``last_update_time_since_epoch``, then the same; one one-row frame each, concatenated with
columns sorted. The table questions read the native API (``/api/native/v1``); the graph
questions read the server's CMFQuery routes (upstream's ``/api/v1``, answered from the lineage
graph).

What differs from a local file, by nature: ``id`` columns are the server's ids (and the ids the
methods take are too), and the times are the server's. Properties the client recorded
(``Pipeline_id``, ``Context_ID``, ``Execution_uuid``...) are the client's, as pushed.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cmf_server_client import _api, errors
from cmf_server_client.client import Client
from cmf_server_client.models import Execution

__all__ = ["ServerQuery"]

CUSTOM_PREFIX = "custom_properties_"


def _name(artifact_name: str) -> str:
    """An artifact name in a path: ``/`` kept (the routes take a path), the rest encoded."""
    return quote(artifact_name.strip(), safe="/")


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "ServerQuery answers pandas DataFrames: pip install 'cmf-server-client[pandas]'"
        ) from exc
    return pandas


def _value(value: Any) -> Any:
    """What CmfQuery reads back from an MLMD value: a string, an int, else a double."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def _copy(target: dict[str, Any], source: Mapping[str, Any], prefix: str = "") -> None:
    """CmfQuery's ``_copy``: properties overwrite, prefixed custom properties get ``_1``,
    ``_2``... when their name is taken."""
    for name, value in (source or {}).items():
        key = prefix + name
        if prefix:
            base, index = key, 0
            while key in target:
                index += 1
                key = f"{base}_{index}"
        target[key] = _value(value)


def execution_row(item: Mapping[str, Any], *, with_id: bool = True) -> dict[str, Any]:
    """A native execution as CmfQuery's one-row frame of it."""
    row: dict[str, Any] = {"id": item["id"], "name": item.get("name") or ""} if with_id else {}
    _copy(row, item.get("properties") or {})
    _copy(row, item.get("custom_properties") or {}, CUSTOM_PREFIX)
    return row


def artifact_row(item: Mapping[str, Any]) -> dict[str, Any]:
    """A native artifact as CmfQuery's ``get_artifact_df``."""
    row: dict[str, Any] = {
        "id": item["id"],
        "type": item["type"],
        "uri": item["uri"],
        "name": item["name"],
        "create_time_since_epoch": item["create_time_since_epoch"],
        "last_update_time_since_epoch": item["last_update_time_since_epoch"],
    }
    _copy(row, item.get("properties") or {})
    _copy(row, item.get("custom_properties") or {}, CUSTOM_PREFIX)
    return row


def frame(rows: Iterable[Mapping[str, Any]]) -> Any:
    """One-row frames concatenated as CmfQuery concatenates them (``sort=True``,
    ``ignore_index=True``); an empty DataFrame when there are none."""
    pd = _pandas()
    frames = [pd.DataFrame(dict(row), index=[0]) for row in rows]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, sort=True, ignore_index=True)


def records_frame(records: Any) -> Any:
    """A server's CmfQuery records (``to_json(orient="records")`` of the frame, missing cells
    ``null``) as the frame again."""
    if not isinstance(records, list):
        return _pandas().DataFrame()
    return frame({k: v for k, v in r.items() if v is not None} for r in records)


class ServerQuery:
    """``CmfQuery`` against a server: ``ServerQuery("http://127.0.0.1:8080")``.

    Takes the :class:`~cmf_server_client.Client` arguments (``token``, ``timeout``...) or a
    ``client``. Unknown names answer what ``CmfQuery`` answers for them (an empty frame,
    ``None``, ``-1``); a server that cannot be reached raises.
    """

    def __init__(
        self,
        url: str = "",
        token: str | None = None,
        *,
        client: Client | None = None,
        **options: Any,
    ) -> None:
        _pandas()
        if client is None and not url:
            raise ValueError("give the server's URL (or a client)")
        self.client = client if client is not None else Client(url, token, **options)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ServerQuery:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _v1(self, method: str, path: str, json_body: Any = None, **params: Any) -> Any:
        return self.client._call(_api.upstream(method, path, json_body, **params))

    def _v1_records(self, path: str, key: str, **params: Any) -> Any:
        data = self._v1("GET", path, **params)
        return records_frame(data.get(key) if isinstance(data, dict) else None)

    # -- pipelines and stages ---------------------------------------------------------------

    def _pipelines(self) -> list[dict[str, Any]]:
        return sorted(self.client.pipelines(page_size=1000), key=lambda p: p["id"])

    def get_pipeline_names(self) -> list[str]:
        """Names of all pipelines (in the order they were first pushed)."""
        return [p["name"] for p in self._pipelines()]

    def get_pipeline_id(self, pipeline_name: str) -> int:
        """The pipeline's server id, or -1."""
        return next((p["id"] for p in self._pipelines() if p["name"] == pipeline_name), -1)

    def get_pipeline_stages(self, pipeline_name: str) -> list[str]:
        """The pipeline's stage names (``<pipeline>/<stage>``); none for an unknown one."""
        try:
            stages = self.client.stages(pipeline_name)
        except errors.NotFound:
            return []
        return [s["name"] for s in sorted(stages, key=lambda s: s["id"])]

    # -- executions -------------------------------------------------------------------------

    def get_all_executions_in_stage(self, stage_name: str) -> Any:
        """Executions of the stage (its full name), one row each."""
        return frame(
            execution_row(x) for x in self.client.executions(stage=stage_name, page_size=1000)
        )

    def get_all_executions_in_pipeline(self, pipeline_name: str) -> Any:
        """Executions of the pipeline, one row each."""
        try:
            found = list(self.client.executions(pipeline=pipeline_name, page_size=1000))
        except errors.NotFound:
            found = []
        return frame(execution_row(x) for x in found)

    def get_all_executions_by_ids_list(self, exe_ids: list[int]) -> Any:
        """The executions of these server ids: their properties and custom properties (no
        ``id`` or ``name`` column, as CmfQuery)."""
        return frame(execution_row(x, with_id=False) for x in self._executions(exe_ids))

    def _executions(self, ids: Iterable[int]) -> list[Execution]:
        found: list[Execution] = []
        for execution_id in sorted(set(ids)):
            try:
                found.append(self.client.execution(execution_id))
            except errors.NotFound:
                continue
        return found

    def get_executions_with_execution_ids(self, exe_ids: list[int]) -> Any:
        """``id``, ``Execution_type_name``, ``Execution_uuid`` of each execution."""
        rows = [execution_row(x) for x in self._executions(exe_ids)]
        result = frame(rows)
        if not rows:
            return result
        return result[["id", "Execution_type_name", "Execution_uuid"]]

    def get_all_executions_for_artifact(self, artifact_name: str) -> Any:
        """A row per event of the artifact: ``Type`` (INPUT/OUTPUT), ``execution_id``,
        ``execution_name``, ``execution_type_name``, ``stage``, ``pipeline``."""
        return self._v1_records(f"/artifacts/name/{_name(artifact_name)}/executions", "executions")

    def get_all_executions_for_artifact_id(self, artifact_id: int) -> Any:
        """As :meth:`get_all_executions_for_artifact`, by the artifact's server id."""
        return self._v1_records(f"/artifacts/id/{int(artifact_id)}/executions", "executions")

    def get_one_hop_parent_executions_ids(
        self, execution_ids: list[int], pipeline_id: int | None = None
    ) -> list[int]:
        """The ids of the executions that wrote what these read."""
        found: list[int] = []
        for execution_id in execution_ids:
            data = self._v1(
                "GET", f"/executions/id/{int(execution_id)}/parents/ids", pipeline_id=pipeline_id
            )
            if isinstance(data, dict):
                found.extend(data.get("parent_execution_ids") or [])
        return found

    def get_all_parent_executions_by_id(
        self, execution_id: list[int], pipeline_id: int | None = None
    ) -> list[list[Any]]:
        """``[parents, links]``: each ancestor as ``[id, Execution_type_name,
        Execution_uuid]``, and the ``{"source": parent, "target": child}`` links."""
        data = self._v1(
            "POST",
            "/executions/ancestors/batch-get",
            {"execution_id": list(execution_id), "pipeline_id": pipeline_id},
        )
        if not isinstance(data, dict):
            return [[], []]
        return [list(data.get("parent_executions") or []), list(data.get("links") or [])]

    def get_all_parent_executions(self, artifact_name: str) -> Any:
        """Every execution that wrote an artifact upstream of this one."""
        return self._v1_records(
            f"/artifacts/name/{_name(artifact_name)}/parent-executions", "executions"
        )

    def find_producer_execution(self, artifact_name: str) -> dict[str, Any] | None:
        """The execution that wrote the artifact (its record; CmfQuery answers the MLMD
        object), or ``None``."""
        data = self._v1("GET", f"/artifacts/name/{_name(artifact_name)}/producer-execution")
        return data.get("execution") if isinstance(data, dict) else None

    get_producer_execution = find_producer_execution

    # -- artifacts --------------------------------------------------------------------------

    def get_all_artifacts(self) -> list[str]:
        """Names of all artifacts."""
        return [a["name"] for a in self.client.artifacts(page_size=1000)]

    get_artifact_names = get_all_artifacts

    def get_all_artifact_types(self) -> list[str]:
        """Names of the artifact types the server knows."""
        data = self._v1("GET", "/artifacts/types")
        return list(data) if isinstance(data, list) else []

    def get_artifact(self, name: str) -> Any | None:
        """The artifact of that name as a one-row frame, or ``None``."""
        found = next(iter(self.client.artifacts(name=name.strip(), max_items=1)), None)
        if found is None:
            return None
        return _pandas().DataFrame(artifact_row(found), index=[0])  # one frame: not sorted

    def get_all_artifacts_by_context(self, pipeline_name: str) -> Any:
        """Every artifact of the pipeline, one row each."""
        try:
            found = list(self.client.artifacts(pipeline=pipeline_name, page_size=1000))
        except errors.NotFound:
            found = []
        return frame(artifact_row(a) for a in found)

    def get_all_artifacts_by_ids_list(self, artifact_ids: list[int]) -> Any:
        """The artifacts of these server ids."""
        found = []
        for artifact_id in sorted(set(artifact_ids)):
            try:
                found.append(self.client.artifact(artifact_id, events=0))
            except errors.NotFound:
                continue
        return frame(artifact_row(a) for a in found)

    def get_all_artifacts_for_execution(self, execution_id: int) -> Any:
        """The execution's input and output artifacts, one row per event, with ``event``."""
        return self._v1_records(f"/executions/id/{int(execution_id)}/artifacts", "artifacts")

    def get_all_artifacts_for_executions(self, execution_ids: list[int]) -> Any:
        """Every artifact these executions read or wrote, once each."""
        data = self._v1("POST", "/executions/artifacts/batch-get", {"exe_ids": list(execution_ids)})
        return records_frame(data.get("artifacts") if isinstance(data, dict) else None)

    def get_one_hop_parent_artifacts(self, artifact_name: str) -> Any:
        """The inputs of the executions that wrote the artifact."""
        return self._v1_records(f"/artifacts/name/{_name(artifact_name)}/parents", "artifacts")

    def get_one_hop_parent_artifacts_with_id(self, artifact_id: int) -> Any:
        """As :meth:`get_one_hop_parent_artifacts` by server id, Environment and Label left
        out."""
        return self._v1_records(f"/artifacts/id/{int(artifact_id)}/parents", "artifacts")

    def get_one_hop_child_artifacts(
        self, artifact_name: str, pipeline_id: int | None = None
    ) -> Any:
        """The outputs of the executions that read the artifact (of executions whose
        ``Pipeline_id`` property is ``pipeline_id``, when given)."""
        return self._v1_records(
            f"/artifacts/name/{_name(artifact_name)}/children", "artifacts", pipeline_id=pipeline_id
        )

    def get_all_parent_artifacts(self, artifact_name: str) -> Any:
        """Every artifact upstream of this one, once each."""
        return self._v1_records(f"/artifacts/name/{_name(artifact_name)}/ancestors", "artifacts")

    def get_all_child_artifacts(self, artifact_name: str) -> Any:
        """Every artifact downstream of this one, once each."""
        return self._v1_records(f"/artifacts/name/{_name(artifact_name)}/descendants", "artifacts")

    # -- the seed's questions -----------------------------------------------------------------

    def resolve_artifact_name(self, artifact_name: str) -> str | None:
        """The full recorded name (``path:md5``) for ``artifact_name``: itself when an
        artifact has that name, else the first artifact (by id) whose path is it or ends with
        ``/<it>`` (so ``trained_model.pkl`` finds ``artifacts/trained_model.pkl:<md5>``)."""
        name = artifact_name.strip()
        if next(iter(self.client.artifacts(name=name, max_items=1)), None) is not None:
            return name
        for candidate in self.client.artifacts(q=name, page_size=1000):
            path = str(candidate["name"]).split(":", 1)[0]
            if path == name or path.endswith("/" + name):
                return str(candidate["name"])
        return None

    def get_upstream_artifacts_by_artifact_name(self, artifact_name: str) -> Any:
        """The seed's "what was this made from": every artifact upstream, by full name or by
        file name (:meth:`resolve_artifact_name`); :meth:`get_all_parent_artifacts`'s
        columns."""
        name = self.resolve_artifact_name(artifact_name)
        return self.get_all_parent_artifacts(name) if name else _pandas().DataFrame()

    def get_downstream_artifacts_by_artifact_name(self, artifact_name: str) -> Any:
        """The seed's "what depends on this": every artifact downstream, by full name or by
        file name; :meth:`get_all_child_artifacts`'s columns."""
        name = self.resolve_artifact_name(artifact_name)
        return self.get_all_child_artifacts(name) if name else _pandas().DataFrame()

    # -- metrics ----------------------------------------------------------------------------

    def get_metrics(self, metrics_name: str) -> Any | None:
        """The step metrics of that (full) name as a DataFrame, read from their parquet bytes
        in the server's artifact store (they are there once ``cmf artifact push`` or
        :meth:`Client.upload` put them); ``None`` when no Step_Metrics has that name.
        Reading parquet needs pyarrow (or fastparquet)."""
        found = next(
            iter(self.client.artifacts(name=metrics_name, type="Step_Metrics", max_items=1)), None
        )
        if found is None:
            return None
        with tempfile.TemporaryDirectory() as folder:
            path = self.client.download_blob(str(found["uri"]), Path(folder) / "metrics.parquet")
            return _pandas().read_parquet(io.BytesIO(path.read_bytes()))
