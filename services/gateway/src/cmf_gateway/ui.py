"""The web UI's static files under ``/ui/`` (docs/ui.md), and ``GET /`` sending a browser there.

The bundle is what ``npm run build`` writes to ``services/ui/dist`` (``scripts/ui.sh build``,
which ``make run`` and ``make test`` call): ``index.html``, hashed files under ``assets/`` and a
favicon. Caching follows the names: a hashed asset never changes, so it is cached for a year
(``immutable``); ``index.html`` names the current assets, so it is revalidated every time
(``no-cache``, with its ETag). Any other path inside ``/ui/`` is a view of the single-page app
and answers ``index.html`` (the app reads its state from the URL); a missing asset is a 404,
never HTML a script tag would choke on. Without a bundle (a machine without Node) ``/ui/``
answers a page that says how to build it, and the API is unaffected.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

# services/gateway/src/cmf_gateway/ui.py -> services/ui/dist of the same checkout.
DEFAULT_DIST = Path(__file__).resolve().parents[3] / "ui" / "dist"

HASHED_CACHE = "public, max-age=31536000, immutable"
INDEX_CACHE = "no-cache"
OTHER_CACHE = "public, max-age=3600"

NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8">
<title>CMF Server</title><body style="font-family:system-ui;max-width:40rem;margin:4rem auto">
<h1>CMF Server</h1><p>The web UI is not built on this machine. Building it needs Node.js 20.19
or newer and npm: run <code>make ui</code> (or <code>make run</code>, which builds it when Node is
there) and reload.</p><p>The API answers as usual: <a href="/api/native/v1/pipelines">
/api/native/v1/pipelines</a>, <a href="/health">/health</a>.</p></body></html>
"""


def serves_ui(path: str) -> bool:
    """Whether the gateway answers ``path`` itself with the UI: ``/`` and ``/ui...`` (no
    service route is there; the table would hand ``/`` to a service's catch-all)."""
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def _inside(root: Path, relative: str) -> Path | None:
    """The file ``relative`` names inside ``root``, or ``None`` when it is not one there."""
    if "\x00" in relative:
        return None
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def ui_router(dist: Path | None) -> APIRouter:
    """``/`` (a redirect), ``/ui`` and ``/ui/{path}`` served from ``dist``."""
    router = APIRouter(include_in_schema=False)
    root = dist.resolve() if dist is not None else None

    def index() -> Response:
        if root is None or not (root / "index.html").is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
        return FileResponse(
            root / "index.html", media_type="text/html", headers={"Cache-Control": INDEX_CACHE}
        )

    @router.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=302)

    @router.get("/ui")
    async def ui_bare() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=308)

    @router.get("/ui/{path:path}")
    async def ui(path: str) -> Response:
        if root is not None and path and path != "index.html":
            found = _inside(root, path)
            if found is not None:
                cache = HASHED_CACHE if path.startswith("assets/") else OTHER_CACHE
                return FileResponse(found, headers={"Cache-Control": cache})
            if path.startswith("assets/") or path == "favicon.svg":
                return Response("not found", status_code=404, media_type="text/plain")
        return index()

    return router
