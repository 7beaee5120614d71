// Lineage page: the graph comes from /api/graph (dbt manifest + source meta), the live status from
// /api/status; cytoscape + dagre lay it out left to right (producer → topic → Flink → bronze → silver
// → gold → exposures).
"use strict";
(() => {
  const { el, fmt, age, when, getJSON, openInAirflow, showMessage } = Portal;
  const LAYER_COLORS = { stream: "#7950f2", bronze: "#c77d3a", silver: "#868e96", gold: "#d4a017",
                         consumer: "#0c8599", other: "#495057" };
  const HEALTH_COLORS = { ok: "#2f9e44", warn: "#f08c00", fail: "#e03131", running: "#1c7ed6", unknown: "#ced4da" };
  const SHAPES = { producer: "ellipse", topic: "barrel", flink_job: "hexagon", source: "round-rectangle",
                   model: "round-rectangle", seed: "rectangle", snapshot: "rectangle", exposure: "tag" };
  let cy = null;
  let statusDoc = { nodes: {} };
  let selected = null;

  function displayLabel(data, st) {
    const line = st && st.summary ? `\n${st.summary}` : "";
    return `${data.label}${line}`;
  }

  function elements(graph) {
    const nodes = graph.nodes.map((n) => ({ data: { ...n, display: n.label, health: "unknown" } }));
    const edges = graph.edges.map((e) => ({ data: { id: e.id, source: e.source, target: e.target } }));
    return [...nodes, ...edges];
  }

  function style() {
    return [
      { selector: "node", style: {
        "shape": (n) => SHAPES[n.data("kind")] || "round-rectangle",
        "background-color": (n) => LAYER_COLORS[n.data("layer")] || LAYER_COLORS.other,
        "background-opacity": 0.15,
        "border-width": 3,
        "border-color": (n) => HEALTH_COLORS[n.data("health")] || HEALTH_COLORS.unknown,
        "label": "data(display)", "text-wrap": "wrap", "text-valign": "center", "text-halign": "center",
        "font-size": 12, "color": "#1f2933", "width": 160, "height": 48, "text-max-width": 152 } },
      { selector: "node[kind = 'flink_job']", style: { "width": 140, "height": 56 } },
      { selector: "node:selected", style: { "background-opacity": 0.45, "border-width": 5 } },
      { selector: "edge", style: { "width": 1.6, "line-color": "#adb5bd", "target-arrow-color": "#adb5bd",
        "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.9 } },
      { selector: "edge.hl", style: { "line-color": "#017cee", "target-arrow-color": "#017cee", "width": 2.6 } },
    ];
  }

  function legend() {
    const box = document.getElementById("legend");
    box.append(el("div", { text: "Layer (fill)" }));
    for (const [layer, color] of Object.entries(LAYER_COLORS)) {
      if (layer === "other") continue;
      box.append(el("span", { class: "swatch", style: `background:${color}` }), layer);
    }
    box.append(el("div", { text: "Status (border)", style: "margin-top:6px" }));
    for (const [health, color] of Object.entries(HEALTH_COLORS)) {
      box.append(el("span", { class: "swatch", style: `background:${color}` }), health);
    }
  }

  function docsHref(data) {
    return data.docs_anchor ? `docs/index.html${data.docs_anchor}` : null;
  }

  function showDetails(node) {
    const data = node.data();
    const st = statusDoc.nodes[data.id] || {};
    const box = document.getElementById("details");
    box.replaceChildren();
    box.append(el("div", { class: "kind", text: `${data.kind.replace("_", " ")} · ${data.layer}` }));
    box.append(el("h3", { text: data.label }));
    box.append(el("span", { class: `badge ${st.health || "unknown"}`, text: st.health || "unknown" }));
    const dl = el("dl");
    const row = (k, v) => { if (v !== null && v !== undefined && v !== "") dl.append(el("dt", { text: k }), el("dd", { text: String(v) })); };
    row("Relation", data.relation);
    row("Materialized", data.materialized);
    row("Rows", st.rows !== undefined ? fmt(st.rows) : null);
    if (st.freshest) row("Freshest", `${when(st.freshest)} (${age(st.age_s)}, ${st.freshness_column})`);
    row("Messages", st.messages !== undefined ? fmt(st.messages) : null);
    row("Flink job", st.flink_state);
    if (st.last_run) {
      row("Last dbt task", `${st.last_run.state} (${st.last_run.step})`);
      row("DAG run", `${st.last_run.dag_id} · ${st.last_run.run_id}`);
      row("Finished", st.last_run.end_date ? when(st.last_run.end_date) : null);
    }
    for (const [k, v] of Object.entries(data.meta || {})) row(k, v);
    row("Description", data.description);
    box.append(dl);
    const actions = el("div", { class: "actions" });
    const docs = docsHref(data);
    if (docs) actions.append(el("a", { href: docs, id: "open-docs", text: "Open dbt docs" }));
    if (st.last_run) {
      const a = el("a", { href: Portal.airflowUrl(st.last_run.url), id: "open-task", class: "secondary",
                          text: "Open Airflow task" });
      a.addEventListener("click", (ev) => { ev.preventDefault(); openInAirflow(st.last_run.url); });
      actions.append(a);
    }
    box.append(actions);
    box.hidden = false;
    document.querySelector("#panel .hint").hidden = true;
  }

  function applyStatus(doc) {
    statusDoc = doc;
    cy.batch(() => {
      cy.nodes().forEach((node) => {
        const st = doc.nodes[node.id()] || {};
        node.data("health", st.health || "unknown");
        node.data("display", displayLabel(node.data(), st));
      });
    });
    const dlq = doc.dlq || {};
    const summary = document.getElementById("summary");
    summary.replaceChildren();
    const dlqCount = dlq.messages;
    summary.append(`${doc.runtime} runtime · DLQ ${dlq.topic}: `,
      el("b", { class: dlqCount ? "warn" : "", text: dlqCount === null || dlqCount === undefined ? "unknown" : fmt(dlqCount) }),
      ` · status ${new Date(doc.generated_at).toLocaleTimeString()}`);
    const errors = Object.entries(doc.errors || {});
    if (errors.length) {
      summary.append(" · ", el("b", { class: "fail", title: errors.map(([k, v]) => `${k}: ${v}`).join("\n"),
                                      text: `${errors.length} probe(s) failed` }));
    }
    if (selected) showDetails(selected);
  }

  async function refreshStatus() {
    try { applyStatus(await getJSON("api/status")); } catch (e) { document.getElementById("summary").textContent = `status unavailable: ${e.message}`; }
  }

  async function main() {
    legend();
    let graph;
    try { graph = await getJSON("api/graph"); } catch (e) { showMessage(`Lineage unavailable: ${e.message}`); return; }
    cy = cytoscape({
      container: document.getElementById("graph"),
      elements: elements(graph),
      style: style(),
      layout: { name: "dagre", rankDir: "LR", nodeSep: 14, rankSep: 46, edgeSep: 8, padding: 12 },
      wheelSensitivity: 0.3, minZoom: 0.2, maxZoom: 2.5,
    });
    window.streamflowLineage = cy;  // for people debugging in the console, and the browser test
    cy.on("tap", "node", (ev) => {
      selected = ev.target;
      cy.edges().removeClass("hl");
      selected.predecessors("edge").union(selected.successors("edge")).addClass("hl");
      showDetails(selected);
    });
    cy.on("dbltap", "node", (ev) => { const href = docsHref(ev.target.data()); if (href) window.location.href = href; });
    document.getElementById("refresh").addEventListener("click", refreshStatus);
    document.body.dataset.nodes = String(cy.nodes().length);
    await refreshStatus();
    setInterval(refreshStatus, 30000);
  }

  main();
})();
