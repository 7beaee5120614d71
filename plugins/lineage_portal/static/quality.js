// Data quality page: the dbt_quality DAG's results over time (chart.js stacked bars per run), the
// latest failures, and every check's latest status. Data: /api/quality.
"use strict";
(() => {
  const { el, fmt, when, getJSON, showMessage } = Portal;
  const SERIES = [["pass", "#2f9e44"], ["warn", "#f08c00"], ["fail", "#e03131"], ["error", "#862e9c"], ["other", "#adb5bd"]];

  function docsLink(uniqueId, text) {
    const kind = (uniqueId || "").split(".")[0];
    if (!["test", "source", "model"].includes(kind)) return document.createTextNode(text);
    return el("a", { href: `docs/index.html#!/${kind}/${uniqueId}`, text });
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
    let data;
    try { data = await getJSON("api/quality"); } catch (e) { showMessage(`Quality results unavailable: ${e.message}`); return; }
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
  }

  main();
})();
