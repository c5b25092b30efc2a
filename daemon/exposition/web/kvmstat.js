// kvmstatd live page: the ranking of /api/v1/stats with sparklines from the
// daemon's history, refreshed in place. No inline code (the page's
// Content-Security-Policy allows only this file), no external resources.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const state = { timer: null, interval: 1000, rows: new Map(), busy: false, refreshes: 0,
                  redrawn: 0 };

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    const a = Math.abs(v);
    if (a >= 1e12) return (v / 1e12).toFixed(1) + "T";
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    if (Number.isInteger(v) || a >= 100) return String(Math.round(v));
    return v.toPrecision(3);
  }

  function query() {
    const p = new URLSearchParams();
    p.set("group", $("group").value);
    p.set("sort", $("sort").value);
    p.set("limit", "50");
    p.set("spark", String(state.spark || 60));
    if ($("nonzero").checked) p.set("nonzero", "1");
    if ($("vm").value) p.set("vm", $("vm").value);
    if ($("match").value) p.set("match", $("match").value);
    // from the origin, never the document's URL: a page opened with
    // user:pass@ in its address would hand fetch() a URL with credentials,
    // which it refuses; the browser sends the cached basic auth itself
    return new URL("/api/v1/stats?" + p.toString(), window.location.origin).href;
  }

  function status(text, error) {
    const s = $("status");
    s.textContent = text;
    s.className = error ? "error" : "";
  }

  function sparkline(svg, points) {
    const vals = points.filter((v) => v !== null);
    let poly = svg.firstChild;
    if (!poly) {
      poly = document.createElementNS(SVG, "polyline");
      svg.appendChild(poly);
    }
    const max = Math.max(1e-12, ...vals), n = points.length;
    const coords = [];
    points.forEach((v, i) => {
      if (v === null) return;
      const x = n > 1 ? (i / (n - 1)) * 100 : 0;
      const y = 19 - (v / max) * 18;
      coords.push(x.toFixed(1) + "," + y.toFixed(1));
    });
    const next = coords.join(" ");
    if (poly.getAttribute("points") !== next) {
      poly.setAttribute("points", next);
      return 1;
    }
    return 0;
  }

  function makeRow() {
    const tr = document.createElement("tr");
    ["vm", "vcpu", "stat", "num", "num", "spark"].forEach((cls) => {
      const td = document.createElement("td");
      td.className = cls;
      tr.appendChild(td);
    });
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 100 20");
    svg.setAttribute("preserveAspectRatio", "none");
    tr.lastChild.appendChild(svg);
    return tr;
  }

  function render(data) {
    const tbody = document.querySelector("#ranking tbody");
    const table = $("ranking");
    const group = data.group;
    table.classList.toggle("no-vcpu", group !== "vcpu");
    table.classList.toggle("no-vm", group === "host");
    const seen = new Set();
    let redrawn = 0;
    data.rows.forEach((r, i) => {
      const key = [r.vm || "", r.vcpu === undefined ? "" : r.vcpu, r.scope, r.stat].join("\u0000");
      let tr = state.rows.get(key);
      if (!tr) {
        tr = makeRow();
        state.rows.set(key, tr);
      }
      seen.add(key);
      const c = tr.children;
      c[0].textContent = r.vm || "";
      c[1].textContent = r.vcpu === undefined ? (r.scope === "vm" ? "VM" : "") : String(r.vcpu);
      c[2].textContent = r.stat;
      c[2].title = r.metric;
      c[3].textContent = fmt(r.value);
      c[4].textContent = r.kind === "counter" ? fmt(r.rate) : "";
      redrawn += sparkline(c[5].firstChild, r.spark || []);
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    });
    for (const [key, tr] of state.rows) {
      if (!seen.has(key)) {
        tr.remove();
        state.rows.delete(key);
      }
    }
    const more = data.truncated ? " (top " + data.rows.length + " of " + data.total + ")" : "";
    const when = new Date(data.time * 1000).toLocaleTimeString();
    status(data.total + " rows" + more + " · every " + data.interval_s + " s · " + when, false);
    // what the tests read: refreshes, and refreshes that moved a sparkline
    document.body.dataset.refreshes = String(++state.refreshes);
    document.body.dataset.sparklinesMoved = String((state.redrawn += redrawn > 0 ? 1 : 0));
  }

  async function refresh() {
    if (state.busy) return;
    state.busy = true;
    try {
      const res = await fetch(query(), { cache: "no-store", credentials: "same-origin" });
      const body = await res.json().catch(() => null);
      if (!res.ok || !body || body.status !== "success") {
        status("kvmstatd answered " + res.status + (body && body.error ? ": " + body.error : ""), true);
      } else {
        const d = body.data;
        const spark = Math.max(2, Math.min(120, Math.floor(d.history_s / d.interval_s) || 60));
        state.spark = spark;
        $("span").textContent = String(Math.round(spark * d.interval_s));
        render(d);
        schedule(Math.max(1000, d.interval_s * 1000));
      }
    } catch (e) {
      status("kvmstatd unreachable: " + e.message, true);
    } finally {
      state.busy = false;
    }
  }

  function schedule(ms) {
    if (ms !== state.interval && state.timer) {
      clearInterval(state.timer);
      state.timer = null;
    }
    state.interval = ms;
    if (!state.timer) state.timer = setInterval(refresh, ms);
  }

  function start() {
    ["vm", "match"].forEach((id) => $(id).addEventListener("input", refresh));
    ["group", "sort", "nonzero"].forEach((id) => $(id).addEventListener("change", refresh));
    schedule(state.interval);
    refresh();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
