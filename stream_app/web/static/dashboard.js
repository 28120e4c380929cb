// Live brand page: polls the worker's read-only JSON API every few seconds and renders
// watch-list entities (with a uPlot chart each) and active alerts with their explanation.
// All text from posts goes through textContent: it is untrusted input.
"use strict";

const POLL_MS = 2000;
const charts = new Map();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const pct = (x) => `${(100 * x).toFixed(1)} %`;
const hashParam = (key) => decodeURIComponent((location.hash.match(new RegExp(`[#&]${key}=([^&]+)`)) || [])[1] || "");
const selected = () => hashParam("entity");

// A worker run with SM_WEB_TOKEN wants it on every data request. Open the page as
// /dashboard#token=...: the fragment never reaches the server or its logs; the page keeps the
// token for this tab and takes it out of the address bar so it is not bookmarked or shared.
const TOKEN = (() => {
  const given = hashParam("token");
  if (given) {
    sessionStorage.setItem("sm-token", given);
    history.replaceState(null, "", location.href.replace(/([#&])token=[^&]*&?/, "$1").replace(/[#&]$/, ""));
  }
  return sessionStorage.getItem("sm-token") || "";
})();

async function getJson(path) {
  const response = await fetch(path, TOKEN ? { headers: { Authorization: `Bearer ${TOKEN}` } } : {});
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function chartFor(card, name, points) {
  const xs = points.map((p) => p.start);
  const shares = points.map((p) => (p.volume ? p.negative_share : null)); // no posts: a gap, not 0 %
  const data = [xs, shares, points.map((p) => p.volume)];
  let chart = charts.get(name);
  if (!chart) {
    const holder = el("div", { class: "chart" });
    card.append(holder);
    chart = new uPlot(
      {
        width: 340,
        height: 150,
        scales: { share: { range: [0, 1] }, vol: {} },
        series: [
          {},
          { label: "negative share", scale: "share", stroke: "#d33", width: 2 },
          { label: "volume / min", scale: "vol", stroke: "#36c", fill: "#36c2" },
        ],
        axes: [{}, { scale: "share", values: (u, v) => v.map((x) => `${Math.round(100 * x)}%`) }, { scale: "vol", side: 1 }],
      },
      data,
      holder,
    );
    charts.set(name, chart);
  } else {
    chart.setData(data);
  }
}

function renderEntities(overview, active) {
  const grid = document.getElementById("entities");
  const alerting = new Set(active.map((a) => a.entity));
  for (const row of overview.entities) {
    let card = grid.querySelector(`[data-entity="${CSS.escape(row.entity)}"]`);
    if (!card) {
      card = el("article", { class: "entity-card", "data-entity": row.entity });
      card.append(el("h3", {}, el("span", { class: "name" }, row.entity), el("span", { class: "badge", hidden: "" }, "ALERT")));
      card.append(el("div", { class: "figures" }));
      grid.append(card);
    }
    card.classList.toggle("alerting", alerting.has(row.entity));
    card.classList.toggle("selected", selected() === row.entity);
    card.querySelector(".badge").hidden = !alerting.has(row.entity);
    const figures = card.querySelector(".figures");
    figures.replaceChildren(
      el("div", { class: "figure negative-share" }, el("b", {}, pct(row.negative_share)), "negative (5 min)"),
      el("div", { class: "figure volume" }, el("b", {}, row.volume), "posts (5 min)"),
      el("div", { class: "figure score" }, el("b", {}, row.mean_score.toFixed(2)), "mean score"),
    );
    chartFor(card, row.entity, row.series);
  }
}

function renderAlert(alert) {
  const box = el("article", { class: `alert ${alert.severity}`, "data-alert-id": alert.alert_id, "data-entity": alert.entity });
  box.append(el("div", { class: "summary" }, `[${alert.severity}] ${alert.summary}`));
  box.append(
    el(
      "div",
      { class: "muted" },
      `since ${new Date(alert.starts_at).toLocaleTimeString()} · ${pct(alert.current.negative_share)} of ${alert.current.volume} posts ` +
        `vs baseline ${pct(alert.baseline.negative_share)} · CUSUM ${alert.statistic.cusum_llr.toFixed(1)} ≥ ${alert.statistic.threshold}`,
    ),
  );
  if (alert.terms.length) {
    box.append(el("div", { class: "terms" }, "Terms: ", ...alert.terms.map((t) => el("span", {}, t.term))));
  }
  if (alert.sources.length) {
    box.append(el("div", { class: "sources muted" }, alert.sources.map((s) => `${s.source}: ${pct(s.negative_share)} of ${s.volume}`).join(" · ")));
  }
  for (const post of alert.top_negative_posts) {
    box.append(el("div", { class: "post", "data-post-id": post.id }, post.snippet));
  }
  return box;
}

function renderAlerts(alerts) {
  const holder = document.getElementById("alerts");
  holder.replaceChildren(...(alerts.active.length ? alerts.active.map(renderAlert) : [el("p", { class: "muted" }, "No active alerts.")]));
  document.getElementById("recent").replaceChildren(
    ...alerts.recent.slice(0, 10).map((a) => el("li", {}, `${new Date(a.evaluated_at).toLocaleTimeString()} ${a.status} · ${a.summary}`)),
  );
}

async function poll() {
  try {
    const [overview, alerts] = await Promise.all([
      getJson("/overview"),
      getJson("/alerts"),
    ]);
    renderAlerts(alerts);
    renderEntities(overview, alerts.active);
    document.getElementById("status").textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = "true";
  } catch (err) {
    document.getElementById("status").textContent = `disconnected: ${err}`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
