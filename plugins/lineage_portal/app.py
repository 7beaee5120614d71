"""The portal's FastAPI app, mounted by Airflow's api-server at ``MOUNT``.

Pages (HTML, shown inside the Airflow UI through an external view's iframe):
  ``/``             lineage graph      ``/quality``    dbt_quality results over time
  ``/docs/``        the published dbt docs site (index.html + manifest.json + catalog.json)
JSON: ``/api/graph`` (from the manifest), ``/api/status`` (live), ``/api/quality`` (results + the
dbt_quality DAG's schedule). "Run now" on the quality page posts to Airflow's own REST API from the
browser, with the user's login (the ``_token`` cookie): the portal never triggers anything itself.
Assets: ``/static/<file>`` (ours, in the package) and ``/vendor/<file>`` (npm libraries installed at
set-up by scripts/setup_portal.sh).

Every route carries Airflow's login dependency (see ``auth``), files are served from fixed allowlists
(no path from the request ever reaches the filesystem), and pages use relative URLs only, so the app
works under any ``[api] base_url`` prefix.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lineage_portal import auth, status, task_status
from streamflow.catalog import ManifestNotFound, load_manifest, manifest_path, topic_renames
from streamflow.lineage import LineageGraph, build_graph
from streamflow.settings import Settings, get_settings

PACKAGE_DIR = Path(__file__).resolve().parent
PAGES_DIR = PACKAGE_DIR / "pages"
STATIC_DIR = PACKAGE_DIR / "static"
PAGE_TAGS: list[str | Any] = [auth.PAGE_TAG]

# Browser libraries: public name → path inside node_modules (package.json pins the versions).
VENDOR_FILES = {
    "cytoscape.min.js": "cytoscape/dist/cytoscape.min.js",
    "cytoscape-dagre.js": "cytoscape-dagre/dist/cytoscape-dagre.js",
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
}
DOCS_FILES = ("index.html", "manifest.json", "catalog.json")
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN",
                    "Referrer-Policy": "same-origin"}


def vendor_dir(settings: Settings) -> Path:
    """Where scripts/setup_portal.sh ran `npm ci` (git-ignored, under the installation dir)."""
    return settings.portal_assets_dir / "node_modules"


def _file(path: Path, *, cache: str = "private, no-cache") -> FileResponse:
    if not path.is_file():
        raise HTTPException(404, f"{path.name} is not available")
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
                        headers={"Cache-Control": cache, **SECURITY_HEADERS})


def _json(data: Any) -> JSONResponse:
    return JSONResponse(data, headers={"Cache-Control": "no-store", **SECURITY_HEADERS})


class GraphCache:
    """The lineage graph, rebuilt only when the manifest file changes (it is ~1 MB of JSON)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, float, str] | None = None
        self._graph: LineageGraph | None = None

    def get(self, settings: Settings) -> tuple[LineageGraph, Path]:
        path = manifest_path(settings)
        topics = topic_renames(settings)
        key = (str(path), path.stat().st_mtime, repr(sorted(topics.items())))
        with self._lock:
            if self._graph is None or self._key != key:
                self._graph, self._key = build_graph(load_manifest(path), topics), key
            return self._graph, path


def create_app(settings_provider: Any = get_settings) -> FastAPI:
    """Build the sub-app. ``settings_provider`` is read per request (tests swap the settings)."""
    app = FastAPI(
        title="StreamFlow lineage portal",
        dependencies=[Depends(auth.login_dependency())],
        docs_url=None, redoc_url=None, openapi_url=None,  # Swagger routes would bypass nothing, but leak shape
    )
    app.add_exception_handler(StarletteHTTPException, auth.auth_exception_handler)
    graphs = GraphCache()
    statuses = status.StatusCache()
    static_files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()} if STATIC_DIR.is_dir() else {}

    def settings() -> Settings:
        result: Settings = settings_provider()
        return result

    def graph_or_404() -> tuple[LineageGraph, Path]:
        try:
            return graphs.get(settings())
        except ManifestNotFound as error:
            raise HTTPException(404, str(error)) from None

    @app.get("/", tags=PAGE_TAGS)
    def lineage_page() -> FileResponse:
        return _file(PAGES_DIR / "lineage.html")

    @app.get("/quality", tags=PAGE_TAGS)
    def quality_page() -> FileResponse:
        return _file(PAGES_DIR / "quality.html")

    @app.get("/docs/", tags=PAGE_TAGS)
    def docs_index() -> Response:
        return docs_file("index.html")

    @app.get("/docs/{name}", tags=PAGE_TAGS)
    def docs_file(name: str) -> Response:
        if name not in DOCS_FILES:
            raise HTTPException(404, "not a dbt docs file")
        path = settings().dbt_docs_dir / name
        if name == "index.html" and not path.is_file():
            return _file(PAGES_DIR / "docs_missing.html")
        return _file(path)

    @app.get("/static/{name}")
    def static_file(name: str) -> FileResponse:
        if name not in static_files:
            raise HTTPException(404, "no such asset")
        return _file(static_files[name])

    @app.get("/vendor/{name}")
    def vendor_file(name: str) -> FileResponse:
        if name not in VENDOR_FILES:
            raise HTTPException(404, "no such library")
        path = vendor_dir(settings()) / VENDOR_FILES[name]
        if not path.is_file():
            raise HTTPException(404, f"{name} not installed: run scripts/setup_portal.sh")
        return _file(path, cache="private, max-age=3600")

    @app.get("/api/graph")
    def api_graph() -> JSONResponse:
        graph, path = graph_or_404()
        return _json({**graph.to_json(), "manifest": path.name, "manifest_dir": path.parent.name})

    @app.get("/api/status")
    def api_status() -> JSONResponse:
        graph, path = graph_or_404()
        s = settings()
        key = (str(path), path.stat().st_mtime)
        return _json(statuses.get(key, lambda: status.collect(graph, s, task_status.latest_dbt_results)))

    @app.get("/api/quality")
    def api_quality() -> JSONResponse:
        """dbt_quality's results (warehouse) and its schedule and latest runs (Airflow's metadata DB).
        Either half may be unavailable on its own; the page says which."""
        from streamflow.portal_status import quality_history

        try:
            dag = task_status.quality_dag_status()
        except Exception as error:  # metadata DB hiccup: the results can still be shown
            dag = {"dag_id": task_status.QUALITY_DAG, "known": False, "runs": [],
                   "note": f"schedule unavailable: {type(error).__name__}: {error}"}
        try:
            return _json({**quality_history(settings()), "dag": dag})
        except Exception as error:  # warehouse down: the page says so instead of a bare 500
            return JSONResponse({"detail": f"quality results unavailable: {error}", "dag": dag}, status_code=503,
                                headers={"Cache-Control": "no-store"})

    return app
