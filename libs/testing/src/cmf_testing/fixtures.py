"""The bodies captured on the wire between the real ``cmf`` client (cmflib 0.1.0) and the
reference server, kept as they were sent:

- ``push_example.json``: a whole ``POST /api/mlmd_push`` body (its ``json_payload`` a string),
- ``push_example_decoded.json``: that ``json_payload`` parsed,
- ``pull_example.json``: the reference's ``POST /api/mlmd_pull`` answer for the same pipeline.

``docs/wire-contract.md`` describes their shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CMF_FIXTURES = Path(__file__).resolve().parent / "data" / "cmf"


def cmf_fixture(name: str) -> dict[str, Any]:
    """The captured body ``name`` (for example ``"push_example.json"``), parsed."""
    body: dict[str, Any] = json.loads((CMF_FIXTURES / name).read_text())
    return body
