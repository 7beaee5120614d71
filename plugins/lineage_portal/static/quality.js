// Data quality page: when dbt_quality runs next (and "Run now"), its results over time (chart.js
// stacked bars per run), the latest failures, and every check's latest status. Data: /api/quality.
"use strict";
(() => {
  const { el, fmt, when, getJSON, showMessage, airflowUrl, openInAirflow } = Portal;
  const SERIES = [["pass", "#2f9e44"], ["warn", "#f08c00"], ["fail", "#e03131"], ["error", "#862e9c"], ["other", "#adb5bd"]];

  function docsLink(uniqueId, text) {
    const kind = (uniqueId || "").split(".")[0];
    if (!["test", "source", "model"].includes(kind)) return document.createTextNode(text);
    return el("a", { href: `docs/index.html#!/${kind}/${uniqueId}`, text });
  }

  function inMinutes(iso) {
    const minutes = Math.round((new Date(iso).getTime() - Date.now()) / 60000);
    if (minutes <= 0) return "due now";
    return minutes < 90 ? `in ${minutes} min` : `in ${Math.round(minutes / 60)} h`;
  }

  function airflowLink(path, text) {
    const a = el("a", { href: airflowUrl(path), text });
    a.addEventListener("click", (ev) => { ev.preventDefault(); openInAirflow(path); });
    return a;
  }

  // When the next (or first) run is due, and what the latest run did - in words.
  function schedule(dag, hasResults) {
    const due = document.getElementById("schedule");
    const button = document.getElementById("run-now");
    const lastRun = document.getElementById("last-run");
    due.replaceChildren();
    lastRun.replaceChildren();
    if (!dag || !dag.known) {
      due.textContent = (dag && dag.note) || "dbt_quality schedule unavailable";
      button.disabled = true;
      return;
    }
    const first = !(dag.runs || []).length;
    if (dag.paused) {
      due.append(el("b", { class: "warn", text: "dbt_quality is paused" }), ": no run is due until it is unpaused in Airflow.");
    } else if (dag.next_run_after) {
      due.append(`${first ? "First" : "Next"} dbt_quality run due `, el("b", { id: "next-run", text: when(dag.next_run_after) }),
        ` (${inMinutes(dag.next_run_after)}, schedule ${dag.schedule || "?"})`);
    } else {
      due.append("No scheduled run is due (schedule ", dag.schedule || "none", ").");
    }
    button.disabled = false;
    button.dataset.triggerPath = dag.trigger_path;
    const latest = (dag.runs || [])[0];
    if (latest) {
      lastRun.append("Latest run ", airflowLink(latest.url, latest.run_id), `: `,
        el("span", { id: "last-verdict", class: `badge ${badge(latest.verdict)}`, text: latest.verdict }),
        latest.note ? ` ${latest.note}` : "", latest.end_date ? ` · ended ${when(latest.end_date)}` : "");
    } else if (!hasResults) {
      lastRun.textContent = "dbt_quality has not run yet: its results appear here after the first run.";
    }
  }

  function badge(state) {
    return { success: "ok", failed: "fail", skipped: "warn", running: "running", queued: "running" }[state] || "unknown";
  }

  // "Run now": Airflow's own REST API, from the browser, with the user's Airflow login (the _token
  // cookie the UI set) - the portal has no permission of its own to trigger anything.
  async function runNow() {
    const button = document.getElementById("run-now");
    const result = document.getElementById("run-now-result");
    const path = button.dataset.triggerPath;
    button.disabled = true;
    result.className = "result";
    result.textContent = "triggering…";
    try {
      const response = await fetch(airflowUrl(path), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ logical_date: null, note: "triggered from the StreamFlow Data Quality page" }),
      });
      let body = {};
      try { body = await response.json(); } catch (e) { /* not JSON */ }
      if (!response.ok) {
        const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || response.statusText);
        throw new Error(response.status === 401 || response.status === 403
          ? `Airflow refused (${response.status}): your login may have expired or lacks permission to trigger DAGs`
          : `Airflow answered ${response.status}: ${detail}`);
      }
      result.replaceChildren("Queued ", airflowLink(`dags/${encodeURIComponent(body.dag_id)}/runs/${encodeURIComponent(body.dag_run_id)}`, body.dag_run_id),
        ` (${body.state}). Results appear here when it finishes.`);
      result.dataset.runId = body.dag_run_id;
    } catch (e) {
      result.className = "result fail";
      result.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  }

  function chart(runs) {
    const labels = runs.map((r) => new Date(r.run_at).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }));
    return new Chart(document.getElementById("runs-chart"), {
      type: "bar",
      data: { labels, datasets: SERIES.map(([key, color]) => ({ label: key, data: runs.map((r) => r[key]), backgroundColor: color, maxBarThickness: 48 })) },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "checks" } } },
        plugins: { tooltip: { callbacks: { title: (items) => runs[items[0].dataIndex].dag_run_id } } },
      },
    });
  }

  function fill(tableId, rows, cells) {
    const body = document.querySelector(`#${tableId} tbody`);
    body.replaceChildren(...rows.map((r) => el("tr", {}, ...cells(r).map((c) => (c instanceof Node ? el("td", {}, c) : el("td", { text: String(c ?? "–") }))))));
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "6", text: "none" })));
  }

  async function main() {
    document.getElementById("run-now").addEventListener("click", runNow);
    let data;
    try { data = await getJSON("api/quality"); } catch (e) { showMessage(`Quality results unavailable: ${e.message}`); return; }
    schedule(data.dag, data.runs.length > 0);
    const last = data.runs[data.runs.length - 1];
    document.getElementById("summary").textContent = last
      ? `${data.runs.length} run(s) · last ${when(last.run_at)}: ${fmt(last.pass)} pass, ${fmt(last.fail + last.error)} failing`
      : "no dbt_quality results yet";
    window.streamflowQualityChart = chart(data.runs);
    fill("failures", data.failures, (r) => [when(r.run_at), r.test_group, docsLink(r.unique_id, r.test_name),
      el("span", { class: `badge ${r.status === "warn" ? "warn" : "fail"}`, text: r.status }), fmt(r.failures),
      el("span", { class: "msg", text: r.message || "" })]);
    fill("tests", data.tests, (r) => [docsLink(r.unique_id, r.test_name), r.test_group,
      el("span", { class: `badge ${r.status === "pass" ? "ok" : r.status === "warn" ? "warn" : "fail"}`, text: r.status }),
      fmt(r.failures), when(r.run_at)]);
    document.body.dataset.loaded = "true";
  }

  main();
})();
