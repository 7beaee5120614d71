"""The lineage portal in a real browser: log in through Airflow's own login page, open
StreamFlow → Lineage inside the Airflow UI, check the graph rendered in the plugin's iframe (fitted to
the viewport, labels readable, nodes coloured by live status), and click through to a model's dbt docs
page; the Data Quality page says when dbt_quality runs next and "Run now" triggers it with the user's
own login. The README's screenshots (docs/screenshots/*.png) are taken here, so they stay current;
other screenshots land in test-output/ for a person to look at.

Headless Chromium is Debian's /usr/bin/chromium (scripts/setup_portal.sh installs it), driven by
Playwright's Python API (its wheel bundles the driver; no browser download).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamflow.airflow_client import AirflowClient
from streamflow.settings import Settings
from streamflow.stack.airflow import admin_password

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MODEL = "stg_transactions"
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1600, "height": 1000}
HEALTH_COLORS = {"ok": "rgb(47,158,68)", "warn": "rgb(240,140,0)", "fail": "rgb(224,49,49)",
                 "running": "rgb(28,126,214)", "unknown": "rgb(206,212,218)"}  # lineage.js HEALTH_COLORS
MIN_LABEL_PX = 10.0


@pytest.fixture(scope="module")
def published_docs(airflow_stack: Settings) -> Settings:
    """A manifest for the graph and a published dbt docs site for the click-through.

    Made the way the platform makes them when missing (`streamflow prepare`, then the
    publish_dbt_docs task's function), so the test also runs before any bootstrap_pipeline run.
    """
    settings = airflow_stack
    if not (settings.dbt_target_dir / "manifest.json").exists():
        subprocess.run([str(REPO_ROOT / "bin" / "streamflow"), "prepare"], check=True, timeout=300)
    if not (settings.dbt_docs_dir / "index.html").exists():
        from streamflow.pipeline import publish_docs

        publish_docs()
    return settings


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="module")
def browser_page(published_docs: Settings) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run scripts/setup_portal.sh (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def _open(page: Any, settings: Settings, url_route: str, title: str) -> Any:
    """Open a plugin page of the Airflow UI, logging in through Airflow's login page when it asks
    (the SPA redirects client-side, so wait for whichever comes first); return the plugin's iframe."""
    page.goto(f"{settings.airflow_url}/plugin/{url_route}")
    first = page.wait_for_selector(f"iframe[title='{title}'], input[name=username]")
    if first.get_attribute("name") == "username":
        password = admin_password(settings)
        assert password, "no Airflow admin password: is Airflow up?"
        page.fill("input[name=username]", settings.airflow_admin_user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"**/plugin/{url_route}**")
        first = page.wait_for_selector(f"iframe[title='{title}']")
    return first


def test_lineage_inside_airflow_and_click_through_to_docs(browser_page: Any, published_docs: Settings,
                                                          output_dir: Path, screenshots: Path) -> None:
    page, settings = browser_page, published_docs
    # Not logged in yet: the portal's own URL sends the browser to Airflow's login page.
    page.goto(f"{settings.airflow_url}/streamflow/lineage/")
    assert "/auth/login" in page.url
    page.wait_for_selector("input[name=username]")
    # The plugin page is Airflow's UI with our app in an iframe.
    frame = _open(page, settings, "streamflow-lineage", "Lineage").content_frame()
    assert frame is not None
    assert "/streamflow/lineage/" in frame.url
    frame.wait_for_selector("body[data-nodes]")
    node_count = int(frame.evaluate("() => window.streamflowLineage.nodes().length"))
    edge_count = int(frame.evaluate("() => window.streamflowLineage.edges().length"))
    assert node_count > 15, f"only {node_count} nodes rendered"
    assert edge_count >= node_count - 1
    # Laid out by dagre in pipeline order (left to right or top to bottom, whichever fits better):
    # the generator before the topic before the job, bronze before gold.
    axis = "x" if frame.evaluate("() => document.body.dataset.rankDir") == "LR" else "y"
    at = frame.evaluate(
        f"() => Object.fromEntries(window.streamflowLineage.nodes().map(n => [n.id(), n.position('{axis}')]))")
    topic = f"topic:{settings.topic_transactions}"
    assert at["producer:generator"] < at[topic] < at["flink:transaction_processor"]
    assert at["source.streamflow.bronze.raw_transactions"] < at["model.streamflow.fct_transactions"]
    # Live status arrived (summary bar with the committed DLQ count) and was painted on the nodes.
    frame.wait_for_function("() => (document.getElementById('summary')?.textContent ?? '').includes('committed')")
    _assert_fits_and_readable(frame)
    _assert_nodes_coloured_by_status(frame)
    page.screenshot(path=str(screenshots / "lineage.png"))

    # A Flink job: hover shows its health in a tooltip, a click its restarts, last exception and lag.
    graph_box = frame.query_selector("#graph").bounding_box()
    assert graph_box
    pos = frame.evaluate("() => window.streamflowLineage.$id('flink:transaction_processor').renderedPosition()")
    page.mouse.move(graph_box["x"] + pos["x"], graph_box["y"] + pos["y"])
    frame.wait_for_selector("#tooltip:not([hidden])")
    assert "transaction_processor" in frame.inner_text("#tooltip")
    page.mouse.click(graph_box["x"] + pos["x"], graph_box["y"] + pos["y"])
    frame.wait_for_selector("#details:not([hidden]) h3")
    details = frame.inner_text("#details")
    for label in ("Flink state", "Restarts", "Consumer lag"):
        assert label in details, details
    page.screenshot(path=str(output_dir / "portal-flink-panel.png"))

    # Click the model's node where cytoscape drew it, then "Open dbt docs" in the side panel.
    # (Playwright's bounding boxes are in the top page's coordinates, iframe offset included.)
    # Clicked right after another node: two selections, not a double click (cytoscape fires dbltap for
    # any two taps within 250 ms, which opened the second node's docs when the machine was fast).
    job_pos = frame.evaluate("() => window.streamflowLineage.$id('flink:transaction_processor').renderedPosition()")
    pos = frame.evaluate(f"() => window.streamflowLineage.$id('model.streamflow.{MODEL}').renderedPosition()")
    page.mouse.click(graph_box["x"] + job_pos["x"], graph_box["y"] + job_pos["y"])
    page.mouse.click(graph_box["x"] + pos["x"], graph_box["y"] + pos["y"])
    frame.wait_for_function(f"() => document.querySelector('#details h3')?.textContent === '{MODEL}'")
    assert "/docs/" not in frame.url, f"a click on a second node opened its docs: {frame.url}"
    page.screenshot(path=str(output_dir / "portal-node-panel.png"))
    frame.click("#open-docs")
    frame.wait_for_url(f"**/streamflow/lineage/docs/index.html#!/model/model.streamflow.{MODEL}")
    frame.wait_for_function(f"() => document.body.innerText.includes('{MODEL}')")
    # The Airflow UI keeps the iframe's location in its own URL: the docs page is deep-linkable.
    assert "/plugin/streamflow-lineage/" in page.url and "docs/index.html" in page.url
    page.wait_for_timeout(1000)  # dbt docs' own scripts finish painting the model page
    page.screenshot(path=str(screenshots / "dbt-docs.png"))


def _assert_fits_and_readable(frame: Any) -> None:
    """Issue 14 §5: the graph fills the canvas (not a small island in its middle) and its labels are
    readable without zooming at 1600×1000."""
    fit = frame.evaluate("""() => { const cy = window.streamflowLineage; const bb = cy.elements().renderedBoundingBox();
        return {x1: bb.x1, x2: bb.x2, y1: bb.y1, y2: bb.y2, w: bb.w, h: bb.h, cw: cy.width(), ch: cy.height(),
                zoom: cy.zoom(), font: parseFloat(cy.nodes()[0].style('font-size'))}; }""")
    assert fit["x1"] >= -1 and fit["y1"] >= -1 and fit["x2"] <= fit["cw"] + 1 and fit["y2"] <= fit["ch"] + 1, fit
    assert fit["w"] >= 0.85 * fit["cw"] or fit["h"] >= 0.85 * fit["ch"], f"graph does not fill its canvas: {fit}"
    assert fit["font"] * fit["zoom"] >= MIN_LABEL_PX, f"labels render at {fit['font'] * fit['zoom']:.1f} px: {fit}"


def _assert_nodes_coloured_by_status(frame: Any) -> None:
    """Every node's border is the colour of the health /api/status gave it (a failing Flink job red)."""
    drawn = frame.evaluate("""() => fetch('api/status').then(r => r.json()).then(doc =>
        window.streamflowLineage.nodes().map(n => [n.id(), (doc.nodes[n.id()] || {}).health || 'unknown',
                                                    n.data('health'), n.style('border-color')]))""")
    for node_id, api_health, data_health, colour in drawn:
        if api_health != data_health:
            continue  # the status changed between the page's poll and ours
        assert colour.replace(" ", "") == HEALTH_COLORS[api_health], (node_id, api_health, colour)
    jobs = {node_id: health for node_id, health, _, _ in drawn if node_id.startswith("flink:")}
    assert len(jobs) == 3 and set(jobs.values()) <= set(HEALTH_COLORS), jobs


def test_node_opens_its_airflow_task(browser_page: Any, published_docs: Settings, output_dir: Path) -> None:
    """"Open Airflow task" leaves the plugin page for the task instance page of Airflow's own UI."""
    page, settings = browser_page, published_docs
    frame = _open(page, settings, "streamflow-lineage", "Lineage").content_frame()
    assert frame is not None
    frame.wait_for_function("() => (document.getElementById('summary')?.textContent ?? '').includes('DLQ')")
    with_task = frame.evaluate(
        "() => fetch('api/status').then(r => r.json()).then(d => Object.entries(d.nodes)"
        ".filter(([, s]) => s.last_run).map(([id, s]) => [id, s.last_run.task_id]))")
    if not with_task:
        pytest.skip("no dbt task has run yet (bootstrap_pipeline / dbt_transform): nothing to link to")
    node_id, task_id = with_task[0]
    frame.evaluate(f"() => window.streamflowLineage.$id({json.dumps(node_id)}).emit('tap')")
    frame.click("#open-task")
    page.wait_for_url("**/dags/*/runs/*/tasks/**")
    assert "/plugin/" not in page.url
    # Airflow's router replaced the plugin page (and its iframe) with the task instance page.
    page.wait_for_selector("iframe[title='Lineage']", state="detached")
    page.get_by_text(task_id).first.wait_for()
    page.get_by_text("Operator", exact=True).first.wait_for()  # the task instance's details loaded
    assert page.get_by_text("No Task Instance found").count() == 0
    page.screenshot(path=str(output_dir / "portal-airflow-task.png"))


def test_quality_page_says_when_dbt_quality_runs_and_runs_it_now(browser_page: Any, published_docs: Settings,
                                                                  screenshots: Path) -> None:
    page, settings = browser_page, published_docs
    frame = _open(page, settings, "streamflow-quality", "Data Quality").content_frame()
    assert frame is not None
    frame.wait_for_function("() => window.streamflowQualityChart !== undefined")
    assert frame.evaluate("() => window.streamflowQualityChart.config.type") == "bar"
    assert frame.evaluate("() => window.streamflowQualityChart.data.datasets.map(d => d.label)") == [
        "pass", "warn", "fail", "error", "other"]
    schedule = frame.inner_text("#schedule")
    assert "dbt_quality run due" in schedule or "paused" in schedule, schedule
    page.screenshot(path=str(screenshots / "data-quality.png"))

    # "Run now" posts to Airflow's REST API with the browser's own login (the _token cookie). The DAG is
    # paused around the click so the test queues a run without running dbt; the run is then deleted.
    client = AirflowClient.from_settings(settings)
    was_paused = bool(client.get("/api/v2/dags/dbt_quality")["is_paused"])
    client.patch("/api/v2/dags/dbt_quality", {"is_paused": True})
    run_id = None
    try:
        frame.click("#run-now")
        frame.wait_for_function("() => document.getElementById('run-now-result').dataset.runId "
                                "|| document.getElementById('run-now-result').classList.contains('fail')")
        result = frame.inner_text("#run-now-result")
        run_id = frame.evaluate("() => document.getElementById('run-now-result').dataset.runId")
        assert run_id, result
        run = client.get(f"/api/v2/dags/dbt_quality/dagRuns/{run_id}")
        assert run["run_type"] == "manual" and run["note"] == "triggered from the StreamFlow Data Quality page"
    finally:
        if run_id:
            client._raw("DELETE", f"/api/v2/dags/dbt_quality/dagRuns/{run_id}")
        client.patch("/api/v2/dags/dbt_quality", {"is_paused": was_paused})


def test_dag_grid_screenshot(browser_page: Any, published_docs: Settings, screenshots: Path) -> None:
    """The README's picture of Airflow itself: bootstrap_pipeline's grid (its runs and tasks)."""
    page, settings = browser_page, published_docs
    page.goto(f"{settings.airflow_url}/dags/bootstrap_pipeline")
    page.get_by_text("bootstrap_pipeline").first.wait_for()
    page.get_by_text("preflight").first.wait_for()  # the grid's task list rendered
    page.wait_for_timeout(1500)
    page.screenshot(path=str(screenshots / "dag-grid.png"))


def test_chromium_is_debians(browser_page: Any) -> None:
    """The browser under test is the system one (no Playwright browser download happened)."""
    assert shutil.which("chromium") == CHROMIUM
    assert "Chrome" in browser_page.evaluate("() => navigator.userAgent")
