"""The lineage portal in a real browser: log in through Airflow's own login page, open
StreamFlow → Lineage inside the Airflow UI, check the graph rendered in the plugin's iframe, and click
through to a model's dbt docs page. Screenshots land in test-output/ for a person to look at.

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

from streamflow.settings import Settings
from streamflow.stack.airflow import admin_password

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MODEL = "stg_transactions"
REPO_ROOT = Path(__file__).resolve().parents[2]


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
def browser_page(published_docs: Settings) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run scripts/setup_portal.sh (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
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
                                                          output_dir: Path) -> None:
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
    # Laid out by dagre left to right: the generator is left of the topic, bronze left of gold.
    x = frame.evaluate(
        "() => Object.fromEntries(window.streamflowLineage.nodes().map(n => [n.id(), n.position('x')]))")
    assert x["producer:generator"] < x["topic:transactions.raw"] < x["flink:transaction_processor"]
    assert x["source.streamflow.bronze.raw_transactions"] < x["model.streamflow.fct_transactions"]
    # Live status arrived (summary bar with the DLQ count) and was painted on the nodes.
    frame.wait_for_function("() => (document.getElementById('summary')?.textContent ?? '').includes('DLQ')")
    page.screenshot(path=str(output_dir / "portal-lineage.png"))

    # Click the model's node where cytoscape drew it, then "Open dbt docs" in the side panel.
    # (Playwright's bounding boxes are in the top page's coordinates, iframe offset included.)
    graph_box = frame.query_selector("#graph").bounding_box()
    assert graph_box
    pos = frame.evaluate(f"() => window.streamflowLineage.$id('model.streamflow.{MODEL}').renderedPosition()")
    page.mouse.click(graph_box["x"] + pos["x"], graph_box["y"] + pos["y"])
    frame.wait_for_selector("#details:not([hidden]) h3")
    assert frame.inner_text("#details h3") == MODEL
    page.screenshot(path=str(output_dir / "portal-node-panel.png"))
    frame.click("#open-docs")
    frame.wait_for_url(f"**/streamflow/lineage/docs/index.html#!/model/model.streamflow.{MODEL}")
    frame.wait_for_function(f"() => document.body.innerText.includes('{MODEL}')")
    # The Airflow UI keeps the iframe's location in its own URL: the docs page is deep-linkable.
    assert "/plugin/streamflow-lineage/" in page.url and "docs/index.html" in page.url
    page.screenshot(path=str(output_dir / "portal-dbt-docs.png"))


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


def test_quality_page_renders_chart(browser_page: Any, published_docs: Settings, output_dir: Path) -> None:
    page, settings = browser_page, published_docs
    frame = _open(page, settings, "streamflow-quality", "Data Quality").content_frame()
    assert frame is not None
    frame.wait_for_function("() => window.streamflowQualityChart !== undefined")
    assert frame.evaluate("() => window.streamflowQualityChart.config.type") == "bar"
    assert frame.evaluate("() => window.streamflowQualityChart.data.datasets.map(d => d.label)") == [
        "pass", "warn", "fail", "error", "other"]
    page.screenshot(path=str(output_dir / "portal-quality.png"))


def test_chromium_is_debians(browser_page: Any) -> None:
    """The browser under test is the system one (no Playwright browser download happened)."""
    assert shutil.which("chromium") == CHROMIUM
    assert "Chrome" in browser_page.evaluate("() => navigator.userAgent")
