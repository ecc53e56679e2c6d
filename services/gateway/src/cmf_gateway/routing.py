"""The gateway's route table: which service answers a path, read off the services' own routes.

Every route a service's routers declare with an error dialect is in the table, under that
service (``cmf_common.dialects.RouteTable``): a path goes to the service whose route matches
it, else to its prefix owner (the service whose routes share the longest run of leading
literal segments with it). A path no service or several own (``/health``,
``/api/native/v1``, ``/api/nothing``) the gateway answers itself, in the prefix owners' dialect.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI

from cmf_common.dialects import RouteTable

METADATA = "metadata"
LINEAGE = "lineage"
ARTIFACTS = "artifacts"

# Where the gateway of distributed mode puts the table entry it matched a request to (a
# ``cmf_common.dialects.Entry``), beside its template (``cmf_common.middleware.ROUTE_TEMPLATE``):
# the proxy reads the route's settings off it rather than match the path again.
ROUTE_ENTRY = "cmf.route_entry"


def route_table(apps: Mapping[str, FastAPI]) -> RouteTable:
    """The table of ``{service name: its app}``."""
    return RouteTable.of({name: app.routes for name, app in apps.items()})
