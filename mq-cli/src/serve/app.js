// mq's dashboard. Every value from the lab host goes into the page as text
// (textContent), never as markup; the page has no inline script (see the
// Content-Security-Policy the server sends).
"use strict";

let view = null;
// Held boards first (the longest hold on top), then by name.
let sort = { key: "held", desc: true };

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function span(s) {
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
}

function when(epoch) {
  if (!epoch) return "";
  return new Date(epoch * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function boardName() {
  const m = location.pathname.match(/^\/board\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

// The state line: how fresh the page is, host by host (fresh, down since
// when and why, or not heard from yet).
function showState(data) {
  const state = $("state");
  const hosts = (data.hosts || []).map((h) => {
    if (h.state === "fresh") return h.host + ": read " + span(h.age_seconds) + " ago";
    if (h.state === "down") {
      return h.host + ": not answering since " + when(h.down_since) + " (" + (h.error || "no answer") + ")" +
        (h.age_seconds !== null ? "; its boards are not shown, last heard " + span(h.age_seconds) + " ago" : "");
    }
    return h.host + ": first read pending";
  });
  if (data.state === "pending") {
    state.className = "";
    state.textContent = "Reading the lab… " + hosts.join(" · ");
  } else if (data.state === "live") {
    state.className = "";
    state.textContent = "Live: " + hosts.join(" · ");
  } else if (data.state === "partial") {
    state.className = "down";
    state.textContent = "Partly live: " + hosts.join(" · ");
  } else {
    state.className = "down";
    const since = data.unreachable_since ? when(data.unreachable_since) : "";
    state.textContent = "Lab host unreachable since " + since + " (" + (data.error || "no answer") +
      ")" + (data.status ? "; showing data " + span(data.age_seconds) + " old" : "");
  }
}

function cells(b) {
  const h = b.holder;
  return {
    system: b.system,
    pools: b.pools.join(" "),
    health: b.health.state,
    holder: h ? h.owner : "",
    key: h && h.key !== "0" ? h.key : "",
    held: h ? h.held_for : -1,
    waiting: b.waiting.length,
    last: b.last_run ? b.last_run.class + " " + when(b.last_run.ended) : "",
  };
}

function matches(b, c) {
  const pool = $("f-pool").value;
  const state = $("f-state").value;
  const holder = $("f-holder").value.trim();
  if (pool && !b.pools.includes(pool)) return false;
  if (holder && !c.holder.includes(holder)) return false;
  switch (state) {
    case "": return true;
    case "free": return !b.holder;
    case "held": return !!b.holder;
    case "waiting": return b.waiting.length > 0;
    case "long": return b.long_hold;
    default: return b.health.state === state;
  }
}

function renderLab(status) {
  const pools = $("f-pool");
  const known = new Set(Array.from(pools.options).map((o) => o.value));
  for (const b of status.boards) for (const p of b.pools) if (!known.has(p)) {
    known.add(p);
    pools.appendChild(el("option", p));
  }
  const rows = status.boards.map((b) => [b, cells(b)]).filter(([b, c]) => matches(b, c));
  rows.sort(([, a], [, b]) => {
    const x = a[sort.key], y = b[sort.key];
    const r = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
    return (sort.desc ? -r : r) || a.system.localeCompare(b.system);
  });
  const body = document.createElement("tbody");
  for (const [b, c] of rows) {
    const tr = el("tr");
    tr.dataset.system = b.system;
    if (b.holder) tr.classList.add("held");
    if (b.long_hold) tr.classList.add("long");
    const link = el("a", b.system);
    link.href = "/board/" + encodeURIComponent(b.system);
    const first = el("td");
    first.dataset.label = "System";
    first.appendChild(link);
    tr.appendChild(first);
    const add = (label, text, cls) => {
      const td = el("td", text, cls);
      td.dataset.label = label;
      td.dataset.field = label.toLowerCase();
      tr.appendChild(td);
      return td;
    };
    add("Pools", c.pools);
    add("Health", b.health.reason ? c.health + ": " + b.health.reason : c.health, "state-" + c.health);
    add("Holder", c.holder);
    add("Key", c.key);
    const held = add("Held", b.holder ? span(b.holder.held_for) : "");
    if (b.long_hold) held.appendChild(el("span", " long", "long-flag"));
    add("Waiting", b.waiting.length ? b.waiting.length + " (" + b.waiting.map((t) => t.user).join(", ") + ")" : "");
    add("Last run", c.last);
    body.appendChild(tr);
  }
  $("boards").replaceChild(body, $("boards").tBodies[0]);
  const held = status.boards.filter((b) => b.holder).length;
  const waiting = status.boards.reduce((n, b) => n + b.waiting.length, 0);
  $("summary").textContent = status.boards.length + " boards, " + held + " held, " + waiting +
    " waiting; host clock " + when(status.taken_at);
}

function row(table, values) {
  const tr = el("tr");
  for (const v of values) tr.appendChild(el("td", v));
  table.tBodies[0].appendChild(tr);
}

function renderBoard(status, name) {
  const b = status.boards.find((x) => x.system === name);
  $("b-name").textContent = name;
  const facts = $("b-facts");
  facts.replaceChildren();
  const fact = (k, v) => { facts.appendChild(el("dt", k)); facts.appendChild(el("dd", v)); };
  if (!b) { fact("Board", "not in this lab"); return; }
  fact("Pools", b.pools.join(" ") || "none");
  fact("Health", b.health.state + (b.health.reason ? ": " + b.health.reason : ""));
  fact("Holder", b.holder ? b.holder.owner + " for " + span(b.holder.held_for) +
    (b.holder.key !== "0" ? ", key " + b.holder.key : "") + (b.long_hold ? " (long)" : "") : "free");
  const line = $("b-line");
  line.replaceChildren();
  for (const t of b.waiting) line.appendChild(el("li", t.user + (t.key !== "0" ? " (key " + t.key + ")" : "") +
    " since " + when(t.since) + (t.pool ? ", for pool " + t.pool : "") +
    (t.priority ? ", priority " + t.priority : "")));
  for (const id of ["b-runs", "b-holds", "b-health"]) $(id).tBodies[0].replaceChildren();
  for (const r of b.runs.slice().reverse()) row($("b-runs"), [when(r.ended), r.class, r.status, r.user, r.key]);
  for (const h of b.holds.slice().reverse()) row($("b-holds"), [when(h.ended), span(h.seconds), h.user, h.key]);
  for (const c of b.health_log.slice().reverse()) row($("b-health"), [c.at, c.from, c.to, c.by, c.reason]);
}

function render() {
  if (!view) return;
  showState(view);
  if (view.status) $("host").textContent = view.status.host;
  const name = boardName();
  $("lab").hidden = !!name;
  $("board").hidden = !name;
  if (!view.status) return;
  if (name) renderBoard(view.status, name); else renderLab(view.status);
}

function take(text) {
  try { view = JSON.parse(text); } catch (e) { return; }
  render();
}

function start() {
  for (const th of document.querySelectorAll("th[data-key]")) {
    th.addEventListener("click", () => {
      sort = { key: th.dataset.key, desc: sort.key === th.dataset.key && !sort.desc };
      for (const o of document.querySelectorAll("th[data-key]")) o.classList.remove("sorted", "desc");
      th.classList.add("sorted");
      if (sort.desc) th.classList.add("desc");
      render();
    });
  }
  for (const id of ["f-pool", "f-state", "f-holder"]) $(id).addEventListener("input", render);
  fetch("/api/status").then((r) => r.text()).then(take).catch(() => {});
  const events = new EventSource("/events");
  events.onmessage = (e) => take(e.data);
  events.onerror = () => {
    $("state").className = "down";
    $("state").textContent = "The dashboard server is not answering; retrying…";
  };
  // The ages on the page keep counting between updates.
  setInterval(() => {
    if (!view) return;
    view.age_seconds += 1;
    for (const h of view.hosts || []) if (h.age_seconds !== null) h.age_seconds += 1;
    showState(view);
  }, 1000);
}

start();
