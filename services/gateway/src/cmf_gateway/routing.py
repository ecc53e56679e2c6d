"""The gateway's route table: which service answers a path.

Every CMF route answers at ``/x`` and ``/api/x``; our own API lives under ``/api/v1/<resource>``.
A path is resolved by its first segment after those prefixes. Later services add rows here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

METADATA = "metadata"
LINEAGE = "lineage"


@dataclass(frozen=True)
class RouteTable:
    cmf_routes: dict[str, str] = field(default_factory=dict)  # first segment -> service
    v1_routes: dict[str, str] = field(default_factory=dict)  # /api/v1/<resource> -> service

    def resolve(self, path: str) -> str | None:
        """The service for ``path``, or ``None`` when the gateway answers it itself."""
        segments = [s for s in path.split("/") if s]
        if segments[:2] == ["api", "v1"]:
            return self.v1_routes.get(segments[2]) if len(segments) > 2 else None
        if segments[:1] == ["api"]:
            segments = segments[1:]
        if not segments:
            return self.cmf_routes.get("")
        return self.cmf_routes.get(segments[0])


# The metadata service's CMF routes, by first path segment (docs/wire-contract.md §1.2-§1.9,
# docs/api.md).
METADATA_CMF_ROUTES = (
    "",
    "mlmd_push",
    "mlmd_pull",
    "python-env",
    "label",
    "label-data",
    "tensorboard",
    "tensorboard-logs",
    "download-python-env",
    "pipelines",
    "artifact_types",
    "pipeline-stages",
    "artifact-types-by-stage",
    "executions-by-stage",
    "artifacts-by-stage",
    "model-card",
    "list-of-executions",
    "artifacts",
    "executions",
    # Upstream's v1 generation at its server path (docs/upstream-v1.md §1), and the 0.1.0
    # Metahub routes, which answer 501 for now (docs/wire-contract.md §1.6).
    "v1",
    "register-server",
    "acknowledge",
    "sync",
    "server-list",
    "schedule-sync",
    "schedules",
    "server",
)
METADATA_V1_RESOURCES = ("pipelines", "executions", "artifacts", "export")
# The lineage service's: the reference's tangled trees (docs/wire-contract.md §1.5) and the
# seed's lineage.
LINEAGE_CMF_ROUTES = (
    "artifact-lineage",
    "artifact-execution-lineage",
    "execution-lineage",
    "lineage",
    "display_lineage",
)
LINEAGE_V1_RESOURCES = ("lineage",)


def default_table() -> RouteTable:
    return RouteTable(
        cmf_routes={
            **dict.fromkeys(METADATA_CMF_ROUTES, METADATA),
            **dict.fromkeys(LINEAGE_CMF_ROUTES, LINEAGE),
        },
        v1_routes={
            **dict.fromkeys(METADATA_V1_RESOURCES, METADATA),
            **dict.fromkeys(LINEAGE_V1_RESOURCES, LINEAGE),
        },
    )
