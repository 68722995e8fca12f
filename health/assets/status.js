// Live status page: polls the admin server's JSON endpoints every second
// and renders them. No external assets; the token (admin.token) is kept in
// sessionStorage and sent as a bearer header, never in a URL.
"use strict";
(function () {
  const POLL_MS = 1000, KEY = "gateway-admin-token";
  const $ = (id) => document.getElementById(id);
  let prevRoutes = null, prevAt = 0, timer = 0, rendered = false;
  const seen = new Map(); // "service\0id" -> {inst, at}: last listing of each instance
  const GONE_MS = 10 * 60 * 1000; // a gone instance is shown for 10 minutes

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v; else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) if (k !== undefined && k !== null) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  const fmt = (n, d) => (n === undefined || n === null || Number.isNaN(n)) ? "n/a" : Number(n).toFixed(d || 0);
  const age = (s) => s === undefined || s === null ? "n/a" : s < 60 ? fmt(s, 1) + " s" : s < 3600 ? fmt(s / 60, 1) + " min" : fmt(s / 3600, 1) + " h";
  const time = (d) => { const t = new Date(d); return Number.isNaN(t.getTime()) || t.getFullYear() < 2000 ? "n/a" : t.toLocaleString(); };

  // table builds a table; cols: [label, key or fn(row), class]; rowAttrs(row) adds attributes.
  function table(caption, cols, rows, rowAttrs) {
    const head = el("tr", {}, ...cols.map(([l, , c]) => el("th", { scope: "col", class: c }, l)));
    const body = rows.map((r) => el("tr", rowAttrs ? rowAttrs(r) : {}, ...cols.map(([l, k, c]) => {
      const v = typeof k === "function" ? k(r) : r[k];
      const cell = el("td", { class: c, "data-col": typeof k === "string" ? k : l.toLowerCase().replace(/[^a-z]+/g, "_") });
      cell.append(v instanceof Node ? v : String(v === undefined || v === null || v === "" ? "—" : v));
      return cell;
    })));
    return el("table", {}, caption ? el("caption", {}, caption) : null, el("thead", {}, head), el("tbody", {}, ...body));
  }
  const na = (what, r) => el("p", { class: "muted", "data-na": "" }, "n/a (" + what + " " + (r.status || r.error) + ")");
  const empty = (what) => el("p", { class: "muted" }, what);

  // get fetches one endpoint; a failure or timeout is status 0 with its
  // error, so one slow endpoint does not blank the others.
  async function get(path) {
    const tok = sessionStorage.getItem(KEY);
    const headers = tok ? { Authorization: "Bearer " + tok } : {};
    try {
      const r = await fetch(path, { headers, cache: "no-store", signal: AbortSignal.timeout(1800) });
      let body = null;
      try { body = await r.json(); } catch (e) { body = null; }
      return { status: r.status, body };
    } catch (e) {
      return { status: 0, body: null, error: e && e.message ? e.message : String(e) };
    }
  }

  // poll fetches every endpoint at once and renders; the next poll starts
  // POLL_MS after this one started (each fetch gives up after 1.8 s), so
  // the page refreshes at least every 2 s.
  async function poll() {
    clearTimeout(timer);
    const started = performance.now();
    const next = () => { timer = setTimeout(poll, Math.max(0, POLL_MS - (performance.now() - started))); };
    const res = await Promise.all(["readyz", "streams", "rules", "instances", "deadletters?limit=20"].map((p) => get(p)));
    if (res.every((r) => r.status === 0)) {
      unreachable(res[0].error);
      next();
      return;
    }
    if (res.some((r) => r.status === 401)) { askToken(sessionStorage.getItem(KEY) ? "The token was rejected. Enter the admin token." : null); return; }
    render(...res);
    next();
  }

  function askToken(msg) {
    sessionStorage.removeItem(KEY);
    for (const id of ["summary", "streams", "routes", "services", "deadletters", "reload"]) $(id).replaceChildren();
    $("main").hidden = true; $("banner").hidden = true; $("logout").hidden = true;
    $("state").textContent = "token needed"; $("state").className = "pill"; $("updated").textContent = "";
    if (msg) $("login-msg").textContent = msg;
    $("login").hidden = false; $("token").value = ""; $("token").focus();
    prevRoutes = null; rendered = false; delete document.body.dataset.rendered;
  }

  function unreachable(err) {
    const b = $("banner");
    b.replaceChildren("Gateway unreachable: " + err);
    b.hidden = false;
    $("state").textContent = "unreachable"; $("state").className = "pill bad";
    document.title = "UNREACHABLE - gateway status";
  }

  function render(ready, streams, rules, inst, dlq) {
    $("login").hidden = true; $("main").hidden = false;
    $("logout").hidden = !sessionStorage.getItem(KEY);
    const now = performance.now(), dt = prevAt ? (now - prevAt) / 1000 : 0;
    const ok = ready.status === 200;
    $("state").textContent = ok ? "ready" : "not ready"; $("state").className = "pill " + (ok ? "ok" : "bad");
    $("state").dataset.ready = ok;
    document.title = (ok ? "" : "NOT READY - ") + "gateway status";
    const b = $("banner");
    if (ok) { b.hidden = true; b.replaceChildren(); } else {
      const checks = (ready.body && ready.body.checks) || {};
      const bad = Object.entries(checks).filter(([, c]) => !c.ok).map(([n, c]) => el("li", {}, n + ": " + (c.error || "failing")));
      b.replaceChildren(ready.status ? "Not ready (/readyz " + ready.status + ")" : "Not ready (/readyz did not answer: " + ready.error + ")", el("ul", {}, ...bad));
      b.hidden = false;
    }
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();

    // Streams.
    const sl = streams.status === 200 && streams.body ? streams.body.streams || [] : null;
    $("streams").replaceChildren(sl === null ? na("/streams", streams) : sl.length === 0 ? empty("no streams") :
      table(null, [["Stream", "stream"], ["Group", "group"], ["Length", "length", "num"], ["Lag", (s) => s.lag < 0 ? "unknown" : s.lag, "num"], ["Pending", "pending", "num"],
        ["Consumed/s", (s) => fmt(s.consumed_per_sec, 1), "num"], ["Oldest", (s) => age(s.oldest_age_seconds), "num"],
        ["Oldest unfinished", (s) => age(s.oldest_unfinished_age_seconds), "num"], ["Trimmed", "trimmed_total", "num"],
        ["Owner", (s) => s.ordered ? (s.owner || "none") : "—"]], sl, (s) => ({ "data-stream": s.stream })));

    // Routes: matches/s from successive polls.
    let totalRate = 0, evalErrs = 0;
    const rs = rules.status === 200 && rules.body ? rules.body.routes || [] : null;
    if (rs === null) { $("routes").replaceChildren(na("/rules", rules)); $("reload").textContent = ""; } else {
      const prev = prevRoutes || new Map();
      for (const r of rs) {
        const p = prev.get(r.name);
        r.rate = p !== undefined && dt > 0 && r.matches >= p ? (r.matches - p) / dt : null;
        totalRate += r.rate || 0; evalErrs += r.eval_errors || 0;
      }
      prevRoutes = new Map(rs.map((r) => [r.name, r.matches]));
      const rb = rules.body;
      const files = rb.files || [];
      const reload = [el("span", { title: files.join("\n") }, "rules " + String(rb.version || "").slice(0, 12) + ", loaded " + time(rb.loaded_at) + ", " +
        (files.length === 1 ? "file " + files[0].split("/").pop() : files.length + " files"))];
      if (rb.last_error) reload.push(el("span", { class: "bad", id: "last-error" }, " — last reload rejected" + (rb.last_error_at ? " at " + time(rb.last_error_at) : "") + ": " + rb.last_error));
      else reload.push(el("span", { class: "ok" }, " — last reload ok"));
      $("reload").replaceChildren(...reload);
      $("routes").replaceChildren(rs.length === 0 ? empty("no routes") : table(null, [["Route", "name"], ["Service", "service"],
        ["Streams", (r) => (r.streams || []).join(", ") || "all"], ["Matches", "matches", "num"], ["Matches/s", (r) => r.rate === null ? "…" : fmt(r.rate, 1), "num"],
        ["Eval errors", (r) => r.eval_errors ? el("span", { class: "bad" }, r.eval_errors) : "0", "num"], ["Source", (r) => r.file ? r.file.split("/").pop() + ":" + r.line : ""]],
        rs, (r) => ({ "data-route": r.name })));
      // Subscriptions declared in Consul service meta, valid or not.
      const subs = Array.isArray(rb.subscriptions) ? rb.subscriptions : [];
      if (subs.length) $("routes").append(table("Subscriptions declared in Consul", [["Route", (x) => x.route || x.service + "/" + x.name],
        ["State", (x) => el("span", { class: x.state === "active" ? "ok" : "bad" }, x.state || "")], ["Instances", (x) => (x.instances || []).length, "num"],
        ["Matches", "matches", "num"], ["Error", "error", "wrap"]], subs, (x) => ({ "data-subscription": x.route || x.name })));
    }
    prevAt = now;

    // Services and instances; an instance seen before but no longer listed is
    // shown as gone for a while (Consul no longer reports it passing).
    let healthy = 0, ejected = 0, gone = 0, noHealthy = 0;
    const svcs = inst.status === 200 && Array.isArray(inst.body) ? inst.body : null;
    if (svcs === null) $("services").replaceChildren(na("/instances", inst)); else {
      const blocks = [];
      const names = new Set(svcs.map((s) => s.service));
      const wall = Date.now();
      for (const [k, v] of seen) if (wall - v.at > GONE_MS) seen.delete(k);
      for (const k of seen.keys()) names.add(k.split("\u0000")[0]);
      for (const name of [...names].sort()) {
        const s = svcs.find((x) => x.service === name) || { service: name, instances: [] };
        const rows = (s.instances || []).map((i) => Object.assign({}, i));
        const ids = new Set(rows.map((i) => i.id));
        for (const [k, v] of seen) if (k.startsWith(name + "\u0000") && !ids.has(v.inst.id)) rows.push(Object.assign({}, v.inst, { state: "gone", inflight: 0, share: 0, latency_ms: null }));
        for (const i of s.instances || []) seen.set(name + "\u0000" + i.id, { inst: i, at: wall });
        const h = rows.filter((i) => i.state === "healthy").length;
        healthy += h; ejected += rows.filter((i) => i.state === "ejected").length; gone += rows.filter((i) => i.state === "gone").length;
        if (h === 0) noHealthy++;
        const cap = el("caption", {}, name + " ", el("span", { class: h ? "ok" : "bad" }, h + " healthy"));
        const t = table(null, [["Instance", "id"], ["Address", "address"],
          ["State", (i) => el("span", { class: i.state === "healthy" ? "ok" : "bad" }, i.state === "gone" ? "gone (not passing in Consul)" : i.state + (i.slow_start ? " (warming)" : "")), "state"],
          ["Latency ms", (i) => fmt(i.latency_ms, 2), "num"], ["Share", (i) => fmt((i.share || 0) * 100, 0) + "%", "num"],
          ["In flight", "inflight", "num"], ["Failures", "consecutive_failures", "num"], ["Ejections", "ejections", "num"]],
        rows, (i) => ({ "data-instance": i.id, "data-state": i.state }));
        t.prepend(cap);
        t.dataset.service = name;
        blocks.push(t);
      }
      $("services").replaceChildren(...(blocks.length ? blocks : [empty("no services")]));
    }

    // Dead letters, newest first.
    const dl = dlq.status === 200 && dlq.body ? dlq.body.entries || [] : null;
    $("deadletters").replaceChildren(dl === null ? na("/deadletters", dlq) : dl.length === 0 ? empty("none") :
      table(null, [["When", (d) => d.dlq_at ? new Date(Number(d.dlq_at)).toLocaleString() : "n/a"], ["Reason", "dlq_reason"], ["Route", "dlq_route"],
        ["Message", (d) => d.dlq_stream + " " + d.dlq_id], ["Status", "dlq_status", "num"], ["Error", "dlq_error", "wrap"]],
      dl, (d) => ({ "data-dlq": d.id })));

    const tile = (label, value, bad, key) => el("div", { class: "tile" + (bad ? " bad" : ""), "data-tile": key }, el("b", {}, value), label);
    $("summary").replaceChildren(el("h2", { class: "sr" }, "Summary"),
      tile("readiness", ok ? "ready" : "not ready", !ok, "ready"),
      tile("matches/s", prevAt && rs ? fmt(totalRate, 1) : "n/a", false, "rate"),
      tile("healthy instances", svcs ? healthy : "n/a", svcs && (noHealthy > 0), "healthy"),
      tile("ejected / gone", svcs ? ejected + " / " + gone : "n/a", ejected + gone > 0, "unhealthy"),
      tile("eval errors", rs ? evalErrs : "n/a", evalErrs > 0, "eval"),
      tile("recent dead letters", dl ? dl.length : "n/a", dl && dl.length > 0, "dlq"));

    document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
    if (!rendered) {
      rendered = true;
      performance.mark("first-data");
      document.body.dataset.rendered = String(performance.now());
    }
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("token").value.trim();
    if (!v) return;
    sessionStorage.setItem(KEY, v);
    $("login").hidden = true;
    poll().then(() => { if (!$("main").hidden) $("main").focus(); });
  });
  $("logout").addEventListener("click", () => { askToken("Token forgotten. Enter the admin token to see the status."); });
  poll();
})();
