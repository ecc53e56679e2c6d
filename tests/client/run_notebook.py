"""Execute a notebook with nbclient in this environment's own ipykernel (run with the cmflib
venv, ``libs/client/src`` on the path, ``CMF_SERVER_URL`` set).

Usage: ``python run_notebook.py <notebook> <executed copy>``. Prints one JSON object:
``{"cells": n, "errors": [...], "svg": <outputs holding an SVG>, "links": <outputs linking to
/ui/>}``; a cell that raised is in ``errors`` with its traceback's last line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

CELL_TIMEOUT_S = 120


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: run_notebook.py <notebook> <executed copy>")
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(target.parent)}},
    )
    errors: list[str] = []
    try:
        client.execute()
    except CellExecutionError as exc:
        errors.append(str(exc).strip().splitlines()[-1])
    nbformat.write(notebook, target)
    svg = links = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            rendered = data.get("text/html", "") + data.get("image/svg+xml", "")
            svg += "<svg" in rendered
            links += "/ui/" in rendered
            if output.get("output_type") == "error":
                errors.append(f"{output.get('ename')}: {output.get('evalue')}")
    print(json.dumps({"cells": len(notebook.cells), "errors": errors, "svg": svg, "links": links}))


if __name__ == "__main__":
    main()
