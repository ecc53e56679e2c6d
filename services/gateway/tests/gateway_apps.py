"""What the gateway's tests share: every service's app, built and never started (their routes
and OpenAPI documents are all the gateway's table needs), built once per session."""

from __future__ import annotations

from functools import cache

from fastapi import FastAPI

from cmf_artifacts.app import create_app as create_artifacts_app
from cmf_artifacts.settings import ArtifactSettings
from cmf_gateway.routing import ARTIFACTS, LINEAGE, METADATA
from cmf_lineage.app import create_app as create_lineage_app
from cmf_lineage.settings import LineageSettings
from cmf_metadata.app import create_app as create_metadata_app
from cmf_metadata.settings import MetadataSettings


@cache
def every_app() -> dict[str, FastAPI]:
    return {
        METADATA: create_metadata_app(MetadataSettings()),
        LINEAGE: create_lineage_app(LineageSettings()),
        ARTIFACTS: create_artifacts_app(ArtifactSettings()),
    }
