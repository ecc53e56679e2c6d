"""What the gateway's tests share: every service's app, built and never started (their routes
and OpenAPI documents are all the gateway's table needs), built once per session; and the
requests a ``/metrics`` text counts."""

from __future__ import annotations

import re
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


_SAMPLE = re.compile(r"^cmf_http_requests_total\{(?P<labels>.*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def counted(metrics: str, **labels: str) -> float:
    """``cmf_http_requests_total`` of the samples with ``labels``, summed, from the text
    ``/metrics`` answers."""
    total = 0.0
    for line in metrics.splitlines():
        found = _SAMPLE.match(line)
        if found is not None:
            have = dict(_LABEL.findall(found["labels"]))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(found["value"])
    return total
