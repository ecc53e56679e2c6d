"""The Python SDK of CMF Server.

```python
from cmf_server_client import Client, ServerQuery

with Client("http://127.0.0.1:8080") as client:
    for pipeline in client.pipelines():
        print(pipeline["name"], pipeline["execution_count"])
    model = next(client.artifacts(type="Model"))
    client.upstream(model["id"])          # what the model was made from (draws in a notebook)

query = ServerQuery("http://127.0.0.1:8080")   # cmflib's CmfQuery, against the server
query.get_all_parent_artifacts("artifacts/model/model.pkl:<md5>")   # a pandas DataFrame
```

- `Client` / `AsyncClient`: pipelines, stages, executions and artifacts (the native API's
  filters, paged as iterators), lineage up and down, an execution's ancestry, the model card,
  artifact download and upload; typed errors (`cmf_server_client.errors`), retries on 429/503,
  timeouts on every request.
- `ServerQuery`: `CmfQuery`'s methods and DataFrame columns (needs the `pandas` extra).
- In Jupyter, pipelines, executions and lineage answers draw themselves (SVG), each with a
  link to its page in the server's web UI.
"""

from cmf_server_client import errors
from cmf_server_client._http import RetryPolicy
from cmf_server_client.aio import AsyncClient
from cmf_server_client.client import Client
from cmf_server_client.models import (
    Artifact,
    Execution,
    Graph,
    Lineage,
    ModelCard,
    Pipeline,
    Record,
    Stage,
)
from cmf_server_client.query import ServerQuery

__all__ = [
    "Artifact",
    "AsyncClient",
    "Client",
    "Execution",
    "Graph",
    "Lineage",
    "ModelCard",
    "Pipeline",
    "Record",
    "RetryPolicy",
    "ServerQuery",
    "Stage",
    "errors",
]
