// Shared helpers of the portal pages. Everything is relative to the page, so the portal works under
// any Airflow base URL; the Airflow UI itself is two levels up (<base>/streamflow/lineage/).
"use strict";
const Portal = (() => {
  const airflowUrl = (path) => new URL("../../" + path, document.baseURI).toString();

  function showMessage(text, link) {
    const box = document.getElementById("message");
    if (!box) return;
    box.textContent = text + " ";
    if (link) {
      const a = document.createElement("a");
      a.href = link.href; a.textContent = link.text; a.target = "_top";
      box.appendChild(a);
    }
    box.hidden = false;
  }

  async function getJSON(path) {
    const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) {
      showMessage("Your Airflow session has expired.", { href: airflowUrl(""), text: "Log in again" });
      throw new Error("not authenticated");
    }
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error(`${path}: ${detail}`);
    }
    return response.json();
  }

  // Open a page of the Airflow UI. Inside Airflow's (sandboxed, same-origin) iframe, navigate the
  // Airflow app itself through its router; opened stand-alone, follow the link.
  function openInAirflow(path) {
    const url = airflowUrl(path);
    try {
      if (window.parent !== window && window.parent.location.origin === window.location.origin) {
        const target = new URL(url);
        window.parent.history.pushState({}, "", target.pathname + target.search + target.hash);
        window.parent.dispatchEvent(new PopStateEvent("popstate", { state: {} }));
        return;
      }
    } catch (e) { /* cross-origin parent: fall through */ }
    window.location.href = url;
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return `${s}s ago`;
    if (s < 5400) return `${Math.round(s / 60)}m ago`;
    if (s < 172800) return `${Math.round(s / 3600)}h ago`;
    return `${Math.round(s / 86400)}d ago`;
  }

  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString());
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  return { airflowUrl, getJSON, openInAirflow, showMessage, age, fmt, when, el };
})();
