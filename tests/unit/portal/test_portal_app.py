"""The portal's FastAPI app in-process: login required on every route, files from allowlists only.

The real Airflow login (JWT cookie/header against a running api-server) is tested in
tests/integration/portal; here Airflow's ``get_user`` dependency is overridden to play a logged-in user.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from lineage_portal import MOUNT, URL_ROUTE
from lineage_portal import app as portal_app

from streamflow.settings import Settings, load_settings

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def settings(tmp_path: Path, manifest) -> Settings:
    s = load_settings(state_dir=tmp_path, install_dir=tmp_path, dbt_artifacts_dir=str(tmp_path / "dbt"))
    s.dbt_docs_dir.mkdir(parents=True)
    (s.dbt_docs_dir / "manifest.json").write_text(json.dumps(manifest))
    (s.dbt_docs_dir / "catalog.json").write_text('{"nodes": {}}')
    (s.dbt_docs_dir / "index.html").write_text("<html>dbt docs SECRET-DOCS-MARKER</html>")
    vendor = portal_app.vendor_dir(s)
    for rel in portal_app.VENDOR_FILES.values():
        (vendor / rel).parent.mkdir(parents=True, exist_ok=True)
        (vendor / rel).write_text("/* lib */")
    return s


@pytest.fixture
def app(settings: Settings):
    return portal_app.create_app(lambda: settings)


@pytest.fixture
def anonymous(app) -> TestClient:
    return TestClient(app, root_path=MOUNT, follow_redirects=False)


@pytest.fixture
def client(app) -> TestClient:
    from airflow.api_fastapi.core_api.security import get_user

    app.dependency_overrides[get_user] = lambda: object()
    return TestClient(app, root_path=MOUNT, follow_redirects=False)


def concrete_paths(app) -> list[tuple[str, bool]]:
    """Every route of the app with its path parameters filled in, and whether it is an HTML page."""
    samples = {"name": None}
    out = []
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        path = route.path
        if "{name}" in path:
            samples["name"] = {"/docs/{name}": "index.html", "/static/{name}": "portal.js",
                               "/vendor/{name}": "cytoscape.min.js"}[path]
            path = path.replace("{name}", samples["name"])
        out.append((path, "page" in route.tags))
    return out


def test_app_has_no_unprotected_route(app):
    """Swagger/OpenAPI routes are off, and every route carries the login dependency."""
    paths = [r.path for r in app.routes]
    assert not {"/docs", "/openapi.json", "/redoc"} & set(paths)
    assert len(concrete_paths(app)) >= 9


def test_every_route_refuses_anonymous_requests(anonymous, app):
    for path, _is_page in concrete_paths(app):
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert "SECRET-DOCS-MARKER" not in response.text and "cytoscape" not in response.text


def test_pages_redirect_browsers_to_airflow_login(anonymous, app):
    pages = [p for p, is_page in concrete_paths(app) if is_page]
    assert {"/", "/quality", "/docs/"} <= set(pages)
    for path in pages:
        response = anonymous.get(path, headers=HTML)
        assert response.status_code == 303, path
        assert "/auth/login?next=" in response.headers["location"]
        assert "SECRET-DOCS-MARKER" not in response.text


def test_logged_in_user_gets_every_route(client, app, monkeypatch):
    from lineage_portal import status

    monkeypatch.setattr(status, "collect", lambda graph, s, tasks: {"nodes": {}, "errors": {}, "dlq": {}})
    monkeypatch.setattr("streamflow.portal_status.quality_history", lambda s: {"runs": [], "failures": [], "tests": []})
    for path, _ in concrete_paths(app):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:200])
        assert response.headers["x-frame-options"] == "SAMEORIGIN"


def test_graph_json(client, settings):
    doc = client.get("/api/graph").json()
    ids = {n["id"] for n in doc["nodes"]}
    assert {"producer:generator", f"topic:{settings.topic_transactions}", "flink:transaction_processor",
            "model.streamflow.stg_transactions"} <= ids
    assert doc["manifest_dir"] == "docs"


def test_docs_site_is_served(client):
    assert "SECRET-DOCS-MARKER" in client.get("/docs/").text
    assert client.get("/docs/catalog.json").json() == {"nodes": {}}
    assert client.get("/docs/profiles.yml").status_code == 404


def test_missing_docs_explain_how_to_publish(client, settings):
    (settings.dbt_docs_dir / "index.html").unlink()
    response = client.get("/docs/")
    assert response.status_code == 200 and "bootstrap_pipeline" in response.text


@pytest.mark.parametrize("path", ["/static/..%2Fapp.py", "/static/app.py", "/vendor/..%2F..%2Fpackage.json",
                                  "/docs/..%2F..%2Fsecrets", "/vendor/react.js"])
def test_files_come_from_allowlists_only(client, path):
    assert client.get(path).status_code == 404


def test_missing_manifest_is_a_404_with_a_hint(client, settings):
    (settings.dbt_docs_dir / "manifest.json").unlink()
    response = client.get("/api/graph")
    assert response.status_code == 404 and "streamflow prepare" in response.json()["detail"]


def test_menu_entries_follow_the_airflow_base_url():
    import streamflow_lineage_plugin as plugin

    entries = plugin.menu_entries("https://airflow.example.com/team-a/")
    lineage = next(e for e in entries if e["url_route"] == URL_ROUTE)
    assert lineage["href"] == "/team-a/streamflow/lineage/"
    assert lineage["category"] == "StreamFlow" and lineage["name"] == "Lineage"
    assert plugin.menu_entries("http://127.0.0.1:8080")[0]["href"] == "/streamflow/lineage/"


def test_quality_api_says_when_dbt_quality_runs_and_how_to_trigger_it(client, monkeypatch):
    from lineage_portal import task_status

    schedule = {"dag_id": "dbt_quality", "known": True, "paused": False, "schedule": "*/15 * * * *",
                "next_run_after": "2026-12-02T20:15:00+00:00", "runs": [],
                "trigger_path": "api/v2/dags/dbt_quality/dagRuns"}
    monkeypatch.setattr(task_status, "quality_dag_status", lambda: schedule)
    monkeypatch.setattr("streamflow.portal_status.quality_history", lambda s: {"runs": [], "failures": [], "tests": []})
    assert client.get("/api/quality").json()["dag"] == schedule
    # The metadata DB failing costs the schedule, not the results.
    monkeypatch.setattr(task_status, "quality_dag_status", lambda: (_ for _ in ()).throw(OSError("db gone")))
    doc = client.get("/api/quality").json()
    assert doc["runs"] == [] and doc["dag"]["known"] is False and "db gone" in doc["dag"]["note"]
    page = client.get("/quality").text
    assert 'id="run-now"' in page and 'id="schedule"' in page


def test_quality_page_triggers_through_airflows_api_with_the_users_login():
    """"Run now" posts to Airflow's REST API from the browser with the session cookie: the portal
    itself has no route that triggers anything."""
    script = (portal_app.STATIC_DIR / "quality.js").read_text()
    assert 'method: "POST", credentials: "same-origin"' in script
    assert "logical_date: null" in script
    assert not [r for r in portal_app.create_app().routes if "POST" in getattr(r, "methods", set())]
