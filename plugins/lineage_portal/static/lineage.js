// Lineage page: the graph comes from /api/graph (dbt manifest + source meta), the live status from
// /api/status; cytoscape + dagre lay it out in pipeline order (producer → topic → Flink → bronze →
// silver → gold → exposures), left to right or top to bottom, whichever fills the viewport better.
"use strict";
(() => {
  const { el, fmt, age, when, getJSON, openInAirflow, showMessage } = Portal;
  const LAYER_COLORS = { stream: "#7950f2", bronze: "#c77d3a", silver: "#868e96", gold: "#d4a017",
                         consumer: "#0c8599", other: "#495057" };
  const HEALTH_COLORS = { ok: "#2f9e44", warn: "#f08c00", fail: "#e03131", running: "#1c7ed6", unknown: "#ced4da" };
  const SHAPES = { producer: "ellipse", topic: "barrel", flink_job: "hexagon", source: "round-rectangle",
                   model: "round-rectangle", seed: "rectangle", snapshot: "rectangle", exposure: "tag" };
  const FONT_PX = 13;
  // The graph is laid out at zoom 1; fitting it may enlarge it up to MAX_FIT_ZOOM (a small project
  // should not show giant boxes) and the page reports labels below MIN_READABLE_PX as unreadable.
  const MAX_FIT_ZOOM = 1.6;
  const MIN_READABLE_PX = 10;
  const PADDING = 16;
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
        "font-size": FONT_PX, "color": "#1f2933", "width": 168, "height": 50, "text-max-width": 160 } },
      { selector: "node[kind = 'flink_job']", style: { "width": 196, "height": 58, "text-max-width": 160 } },
      // A failing node is red all over, not only its border: a restart loop must not look like "running".
      { selector: "node[health = 'fail']", style: { "background-color": HEALTH_COLORS.fail, "background-opacity": 0.22,
        "border-width": 4 } },
      { selector: "node:selected", style: { "background-opacity": 0.45, "border-width": 5 } },
      { selector: "edge", style: { "width": 1.6, "line-color": "#adb5bd", "target-arrow-color": "#adb5bd",
        "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.9 } },
      { selector: "edge.hl", style: { "line-color": "#017cee", "target-arrow-color": "#017cee", "width": 2.6 } },
    ];
  }

  // Edges out of the streaming half are kept short, so every Flink job and bronze table sits right
  // after its topic (network simplex would otherwise pull a job with few successors far down).
  const STREAM_LAYERS = new Set(["stream", "bronze"]);
  const streamWeight = (edge) => (STREAM_LAYERS.has(edge.source().data("layer")) ? 8 : 1);

  // Lay the graph out in both directions and keep the one that fits the container at the larger
  // zoom: a wide pipeline (10 ranks) fills a landscape viewport better top to bottom.
  function layout() {
    const container = cy.container();
    const width = container.clientWidth - 2 * PADDING;
    const height = container.clientHeight - 2 * PADDING;
    let best = null;
    for (const rankDir of ["LR", "TB"]) {
      const wide = rankDir === "LR";
      cy.layout({ name: "dagre", rankDir, nodeSep: wide ? 16 : 22, rankSep: wide ? 44 : 34, edgeSep: 8,
                  edgeWeight: streamWeight, fit: false, animate: false }).run();
      const box = cy.elements().boundingBox();
      const zoom = Math.min(width / box.w, height / box.h);
      if (!best || zoom > best.zoom) best = { rankDir, zoom, positions: cy.nodes().map((n) => [n.id(), { ...n.position() }]) };
    }
    cy.batch(() => { for (const [id, pos] of best.positions) cy.$id(id).position(pos); });
    document.body.dataset.rankDir = best.rankDir;
    fit();
  }

  function fit() {
    cy.resize();
    cy.fit(undefined, PADDING);
    if (cy.zoom() > MAX_FIT_ZOOM) { cy.zoom(MAX_FIT_ZOOM); cy.center(); }
    const readable = FONT_PX * cy.zoom() >= MIN_READABLE_PX;
    document.body.dataset.labelPx = (FONT_PX * cy.zoom()).toFixed(1);
    document.getElementById("zoom-hint").hidden = readable;
  }

  function legend() {
    const box = document.getElementById("legend");
    box.append(el("div", { text: "Layer (fill)" }));
    for (const [layer, color] of Object.entries(LAYER_COLORS)) {
      if (layer === "other") continue;
      box.append(el("span", { class: "swatch", style: `background:${color}` }), layer);
    }
    box.append(el("div", { text: "Status (border; failing nodes are red)", style: "margin-top:6px" }));
    for (const [health, color] of Object.entries(HEALTH_COLORS)) {
      box.append(el("span", { class: "swatch", style: `background:${color}` }), health);
    }
  }

  function docsHref(data) {
    return data.docs_anchor ? `docs/index.html${data.docs_anchor}` : null;
  }

  const epochWhen = (s) => (s ? new Date(s * 1000).toLocaleString() : null);
  const epochAge = (s) => (s ? age(Date.now() / 1000 - s) : null);

  // Flink job facts (streamflow.flink_health.JobHealth + consumer lag) as label/value pairs.
  function jobRows(st) {
    const job = st.job || null;
    const lag = st.lag || null;
    const rows = [["Flink state", job ? job.state : "unknown (no health reading)"]];
    if (job) {
      rows.push(["Restarts", job.restarts === null || job.restarts === undefined ? "unknown" : fmt(job.restarts)]);
      rows.push(["Health", job.healthy ? "healthy" : job.reason]);
      if (job.last_exception) rows.push(["Last exception", job.last_exception]);
      if (job.running_since) rows.push(["Running since", `${epochWhen(job.running_since)} (${epochAge(job.running_since)})`]);
      rows.push(["Last checkpoint", job.last_checkpoint_at ? `${epochWhen(job.last_checkpoint_at)} (${epochAge(job.last_checkpoint_at)})` : "none"]);
    }
    if (lag) {
      rows.push(["Consumer group", lag.group]);
      rows.push(["Consumer lag", lag.lag === null || lag.lag === undefined ? "unknown (no committed offsets yet)" : `${fmt(lag.lag)} records`]);
    } else {
      rows.push(["Consumer lag", "unknown"]);
    }
    return rows;
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
    const row = (k, v, cls) => {
      if (v === null || v === undefined || v === "") return;
      dl.append(el("dt", { text: k }), el("dd", { text: String(v), ...(cls ? { class: cls } : {}) }));
    };
    row("Relation", data.relation);
    row("Materialized", data.materialized);
    row("Rows", st.rows !== undefined ? fmt(st.rows) : null);
    if (st.freshest) row("Freshest", `${when(st.freshest)} (${age(st.age_s)}, ${st.freshness_column})`);
    if (st.count_complete !== undefined) {
      row("Messages", `${st.count_complete ? "" : "≥ "}${fmt(st.messages_at_least)} committed`);
      row("Offsets", st.offsets !== undefined ? `${fmt(st.offsets)} (incl. aborted transactions and markers)` : null);
    } else if (st.offsets !== undefined) {
      row("Offsets", fmt(st.offsets));
    }
    if (st.rejects_by_table) {
      row("Refused rows", Object.entries(st.rejects_by_table).map(([t, n]) => `${t}: ${fmt(n)}`).join(", ") || "none");
      row("SQLSTATE", (st.rejects_sqlstates || []).join(", "));
    }
    if (data.kind === "flink_job") for (const [k, v] of jobRows(st)) row(k, v, k === "Last exception" ? "exception" : null);
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

  // Hover tooltip: the node's status in one glance (for a Flink job: restarts and last exception).
  function showTooltip(node) {
    const st = statusDoc.nodes[node.id()] || {};
    const tip = document.getElementById("tooltip");
    tip.replaceChildren(el("b", { text: node.data("label") }), " ",
      el("span", { class: `badge ${st.health || "unknown"}`, text: st.health || "unknown" }));
    if (st.summary) tip.append(el("div", { text: st.summary }));
    if (node.data("kind") === "flink_job") {
      const job = st.job || {};
      if (!job.healthy && job.reason) tip.append(el("div", { class: "reason", text: job.reason }));
      if (job.last_exception) tip.append(el("div", { class: "exception", text: `Last exception: ${job.last_exception}` }));
    }
    const pos = node.renderedPosition();
    const box = cy.container().getBoundingClientRect();
    tip.style.left = `${Math.min(box.left + pos.x + 12, window.innerWidth - 380)}px`;
    tip.style.top = `${box.top + pos.y + node.renderedHeight() / 2 + 6}px`;
    tip.hidden = false;
  }

  function summaryBar(doc) {
    const dlq = doc.dlq || {};
    const summary = document.getElementById("summary");
    summary.replaceChildren();
    const count = dlq.complete ? fmt(dlq.messages) : (dlq.at_least ? `≥ ${fmt(dlq.at_least)}` : "unknown");
    const title = `Committed records a read_committed consumer receives from ${dlq.topic}` +
      (dlq.offsets !== null && dlq.offsets !== undefined ? ` (the topic spans ${fmt(dlq.offsets)} offsets, aborted transactions and markers included)` : "");
    summary.append(`${doc.runtime} runtime · DLQ ${dlq.topic}: `,
      el("b", { id: "dlq-count", class: dlq.at_least ? "warn" : "", title, text: count }), " committed");
    // Rows a bronze sink refused (passed validation, missing from bronze): red when there is any.
    const rejects = doc.sink_rejects || {};
    const known = rejects.rows !== null && rejects.rows !== undefined;
    const perTable = Object.entries(rejects.by_table || {}).map(([t, n]) => `${t}: ${fmt(n)}`).join(", ");
    const rejectsTitle = `Rows a bronze sink refused, kept in ${rejects.relation || "bronze.sink_rejects"} with PostgreSQL's error` +
      (perTable ? ` (${perTable}; SQLSTATE ${(rejects.sqlstates || []).join(", ")}; newest ${when(rejects.newest)})` : "");
    summary.append(" · sink rejects: ", el("b", { id: "sink-rejects-count", class: known ? (rejects.rows > 0 ? "fail" : "") : "unknown",
                                                  title: rejectsTitle, text: known ? fmt(rejects.rows) : "unknown" }));
    const jobs = Object.entries(doc.jobs || {});
    const failing = jobs.filter(([, j]) => j.health === "fail");
    const unknown = jobs.filter(([, j]) => j.health === "unknown");
    if (jobs.length) {
      summary.append(" · Flink: ");
      if (failing.length) {
        summary.append(el("b", { id: "jobs-failing", class: "fail", title: failing.map(([n, j]) => `${n}: ${j.summary}`).join("\n"),
                                 text: `${failing.length} failing` }));
      } else if (unknown.length) {
        summary.append(el("b", { class: "unknown", text: `${unknown.length} unknown` }));
      } else {
        summary.append(`${jobs.length} jobs`);
      }
    }
    summary.append(` · status ${new Date(doc.generated_at).toLocaleTimeString()}`);
    const errors = Object.entries(doc.errors || {});
    if (errors.length) {
      summary.append(" · ", el("b", { class: "fail", title: errors.map(([k, v]) => `${k}: ${v}`).join("\n"),
                                      text: `${errors.length} probe(s) failed` }));
    }
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
    summaryBar(doc);
    document.body.dataset.statusAt = doc.generated_at;
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
      layout: { name: "preset" },
      wheelSensitivity: 0.3, minZoom: 0.2, maxZoom: 2.5,
    });
    layout();
    window.streamflowLineage = cy;  // for people debugging in the console, and the browser test
    // Cytoscape fires "dbltap" for any two taps within 250 ms, even on two different nodes: a quick
    // click on one node and then another opened the second one's docs. Only a second tap on the node
    // tapped just before counts as a double click.
    let previousTapId = null;
    let lastTapId = null;
    cy.on("tap", (ev) => {
      previousTapId = lastTapId;
      lastTapId = ev.target === cy ? null : ev.target.id();
    });
    cy.on("tap", "node", (ev) => {
      selected = ev.target;
      cy.edges().removeClass("hl");
      selected.predecessors("edge").union(selected.successors("edge")).addClass("hl");
      showDetails(selected);
    });
    cy.on("dbltap", "node", (ev) => {
      if (previousTapId !== ev.target.id()) return;
      const href = docsHref(ev.target.data());
      if (href) window.location.href = href;
    });
    cy.on("mouseover", "node", (ev) => showTooltip(ev.target));
    cy.on("mouseout", "node", () => { document.getElementById("tooltip").hidden = true; });
    cy.on("pan zoom", () => { document.getElementById("tooltip").hidden = true; });
    let resizeTimer = null;
    window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(layout, 150); });
    document.getElementById("refresh").addEventListener("click", refreshStatus);
    document.getElementById("fit").addEventListener("click", fit);
    document.body.dataset.nodes = String(cy.nodes().length);
    await refreshStatus();
    setInterval(refreshStatus, 30000);
  }

  main();
})();
