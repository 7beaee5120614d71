"""The lineage portal as mounted by the running api-server: Airflow's login guards every route,
and the JSON describes the project's real lineage."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute
from lineage_portal import MOUNT, URL_ROUTE
from lineage_portal.app import VENDOR_FILES, create_app

from streamflow.airflow_client import AirflowClient
from streamflow.catalog import flink_job_keys, manifest_path
from streamflow.flink_spec import spec_for
from streamflow.settings import Settings

pytestmark = pytest.mark.integration

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
SAMPLE_NAMES = {"/docs/{name}": "manifest.json", "/static/{name}": "lineage.js",
                "/vendor/{name}": next(iter(VENDOR_FILES))}
# Strings that would show content leaked to an anonymous caller.
LEAK_MARKERS = ("cytoscape", "<script", "stg_transactions", "transactions.raw", "dbt_test_results", "nodes")
def chain(settings: Settings) -> list[str]:
    return ["producer:generator", f"topic:{settings.topic_transactions}", "flink:transaction_processor",
            "source.streamflow.bronze.raw_transactions", "model.streamflow.stg_transactions",
            "model.streamflow.fct_transactions"]


def portal_routes() -> list[tuple[str, bool]]:
    """(concrete path, is an HTML page) for every route the plugin app declares."""
    routes = []
    for route in create_app().routes:
        if isinstance(route, APIRoute):
            path = route.path.replace("{name}", SAMPLE_NAMES.get(route.path, ""))
            assert "{" not in path, f"new parametrised route {route.path}: add a sample to SAMPLE_NAMES"
            routes.append((path, "page" in route.tags))
    return routes


@pytest.fixture(scope="module")
def base(portal_stack: Settings) -> str:
    return f"{portal_stack.airflow_url}{MOUNT}"


@pytest.fixture(scope="module")
def token(portal_stack: Settings) -> str:
    return AirflowClient.from_settings(portal_stack).token()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60, follow_redirects=False) as client:
        yield client


def test_plugin_is_loaded_with_its_menu_entry(portal_stack: Settings, token: str, http: httpx.Client):
    body = http.get(f"{portal_stack.airflow_url}/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}).json()
    plugin = next(p for p in body["plugins"] if p["name"] == "streamflow_lineage")
    views = {v["url_route"]: v for v in plugin["external_views"]}
    assert views[URL_ROUTE]["category"] == "StreamFlow" and views[URL_ROUTE]["name"] == "Lineage"
    assert views[URL_ROUTE]["href"].endswith(f"{MOUNT}/")
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == [MOUNT]
    errors = http.get(f"{portal_stack.airflow_url}/api/v2/plugins/importErrors",
                      headers={"Authorization": f"Bearer {token}"}).json()
    assert not [e for e in errors["import_errors"] if "lineage" in e["source"]]


def test_every_route_requires_login(base: str, http: httpx.Client):
    routes = portal_routes()
    assert len(routes) >= 9
    for path, _ in routes:
        response = http.get(base + path)
        assert response.status_code == 401, (path, response.status_code)
        assert not any(marker in response.text for marker in LEAK_MARKERS), (path, response.text[:200])


def test_pages_send_browsers_to_airflow_login(base: str, http: httpx.Client, portal_stack: Settings):
    pages = [path for path, is_page in portal_routes() if is_page]
    assert {"/", "/quality", "/docs/"} <= set(pages)
    for path in pages:
        response = http.get(base + path, headers=HTML)
        assert response.status_code == 303, path
        location = urlsplit(urljoin(base + path, response.headers["location"]))
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{portal_stack.airflow_url}/auth/login"
        assert parse_qs(location.query)["next"] == [base + path]  # back to the page after logging in
        assert not any(marker in response.text for marker in LEAK_MARKERS)


@pytest.mark.parametrize("credentials", ["header", "cookie"])
def test_forged_or_bad_tokens_are_refused(base: str, http: httpx.Client, token: str, credentials: str):
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    for bad in (forged, "not-a-jwt"):
        if credentials == "header":
            response = http.get(f"{base}/api/graph", headers={"Authorization": f"Bearer {bad}"})
        else:
            with httpx.Client(timeout=60, cookies={"_token": bad}) as with_cookie:
                response = with_cookie.get(f"{base}/api/graph")
        assert response.status_code == 401
        assert "nodes" not in response.text


def test_logged_in_user_gets_every_route(base: str, http: httpx.Client, token: str):
    for path, _ in portal_routes():
        response = http.get(base + path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    # The UI's way: the _token cookie, for a page and a vendored library.
    with httpx.Client(timeout=60, cookies={"_token": token}) as browser_like:
        assert browser_like.get(f"{base}/", headers=HTML).status_code == 200
        library = browser_like.get(f"{base}/vendor/cytoscape.min.js")
        assert library.status_code == 200 and "cytoscape" in library.text[:2000]


def test_lineage_json_follows_the_project_manifest(base: str, http: httpx.Client, token: str,
                                                   portal_stack: Settings):
    graph = http.get(f"{base}/api/graph", headers={"Authorization": f"Bearer {token}"}).json()
    ids = {n["id"] for n in graph["nodes"]}
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    for upstream, downstream in itertools.pairwise(chain(portal_stack)):
        assert (upstream, downstream) in edges, f"missing {upstream} -> {downstream}"
    # every job of the catalog (k8s/base/flink) is drawn, fed by the input topic the settings name
    for job in flink_job_keys():
        assert (f"topic:{portal_stack.topic_transactions}", f"flink:{job}") in edges
    assert ("flink:fraud_detector", f"topic:{portal_stack.topic_alerts}") in edges
    # Every model and exposure of the manifest is drawn, with dbt's own dependencies.
    manifest = json.loads(manifest_path(portal_stack).read_text())
    models = {uid for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    assert models <= ids
    for uid, exposure in manifest.get("exposures", {}).items():
        assert uid in ids
        for parent in exposure["depends_on"]["nodes"]:
            assert (parent, uid) in edges
    layers = {n["id"]: n["layer"] for n in graph["nodes"]}
    assert layers["model.streamflow.stg_transactions"] == "silver"
    assert layers["model.streamflow.fct_transactions"] == "gold"


def test_live_status(base: str, http: httpx.Client, token: str, portal_stack: Settings):
    doc = http.get(f"{base}/api/status", headers={"Authorization": f"Bearer {token}"}).json()
    graph = http.get(f"{base}/api/graph", headers={"Authorization": f"Bearer {token}"}).json()
    assert set(doc["nodes"]) == {n["id"] for n in graph["nodes"]}
    assert doc["errors"] == {}, doc["errors"]
    bronze = doc["nodes"]["source.streamflow.bronze.raw_transactions"]
    assert isinstance(bronze["rows"], int)  # migrations applied by the stack fixture: the table exists
    assert bronze["freshness_column"] == "ingested_at"
    # The DLQ figure is a count of committed records (a read_committed consumer), with the offsets beside it.
    assert doc["dlq"]["topic"] == portal_stack.topic_dlq and isinstance(doc["dlq"]["messages"], int)
    assert doc["dlq"]["complete"] is True and doc["dlq"]["offsets"] >= doc["dlq"]["messages"]
    assert all(s["health"] in {"ok", "warn", "fail", "running", "unknown"} for s in doc["nodes"].values())
    # Each Flink job: streamflow.flink_health's reading (state, restarts, reason) and its group's lag.
    assert set(doc["jobs"]) == set(flink_job_keys())
    for job in doc["jobs"]:
        node = doc["nodes"][f"flink:{job}"]
        assert node["job"]["job"] == job and node["job"]["reason"], node
        assert node["flink_state"] == node["job"]["state"]
        assert node["lag"]["group"] == spec_for(job).kafka_group_id
        if not node["job"]["healthy"]:
            assert node["health"] != "ok"


def test_quality_schedule_comes_from_airflow(base: str, http: httpx.Client, token: str):
    """The Data Quality page says when dbt_quality runs next: Airflow's own schedule for the DAG."""
    doc = http.get(f"{base}/api/quality", headers={"Authorization": f"Bearer {token}"}).json()
    dag = doc["dag"]
    assert dag["known"] is True and dag["dag_id"] == "dbt_quality", dag
    assert dag["schedule"] and dag["trigger_path"] == "api/v2/dags/dbt_quality/dagRuns"
    if not dag["paused"]:
        assert dag["next_run_after"], dag


def test_quality_results_over_time(base: str, http: httpx.Client, token: str, warehouse_dsn: str):
    run_id = f"portal-test-{uuid.uuid4().hex[:8]}"
    rows = [(run_id, "staging", f"test.streamflow.portal_check_a.{run_id}", "portal_check_a", "pass", 0),
            (run_id, "staging", f"test.streamflow.portal_check_b.{run_id}", "portal_check_b", "fail", 7)]
    with psycopg.connect(warehouse_dsn) as conn:
        conn.cursor().executemany(
            "INSERT INTO quality.dbt_test_results (dag_run_id, test_group, unique_id, test_name, status, failures, "
            "run_at) VALUES (%s, %s, %s, %s, %s, %s, now() + interval '1 day')", rows)
    try:
        doc = http.get(f"{base}/api/quality", headers={"Authorization": f"Bearer {token}"}).json()
        run = next(r for r in doc["runs"] if r["dag_run_id"] == run_id)
        assert (run["pass"], run["fail"]) == (1, 1)
        failure = next(f for f in doc["failures"] if f["dag_run_id"] == run_id)
        assert failure["test_name"] == "portal_check_b" and failure["failures"] == 7
    finally:
        with psycopg.connect(warehouse_dsn) as conn:
            conn.execute("DELETE FROM quality.dbt_test_results WHERE dag_run_id = %s", (run_id,))
