"""What a backup of the metadata schema holds (``cmf-server export``, cmf_server.backup): every
table but the ones listed here, read and written by :mod:`cmf_common.dump`.

Left out: the listings' search and count tables, which the triggers on ``executions`` and
``events`` write again as those rows are restored (0002_listing_indexes.sql,
0005_pipeline_artifacts.sql); and the outbox's rows, which only carry changes on to consumers:
a restored server's lineage graph is rebuilt from its tables (``cmf-server lineage rebuild``),
and the per-pipeline sequences and published marks are kept, so consistency tokens and the
relay go on from where they were.
"""

from __future__ import annotations

DERIVED = (
    "execution_search",
    "execution_stage_counts",
    "stage_artifacts",
    "stage_artifact_counts",
    "pipeline_artifacts",
    "pipeline_artifact_counts",
)
TRANSIENT = ("outbox",)
LEFT_OUT = DERIVED + TRANSIENT
# A server holding rows in any of these is not empty: an import refuses it.
CONTENT = ("pipelines", "artifacts", "metahub_peers")
