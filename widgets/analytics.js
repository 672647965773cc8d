// batchnb AnalyticsDashboard: metric cards and SVG charts of a period, values on hover, a
// date-range and user filter, and report downloads. The kernel computes every figure
// (batchnb/ui/analytics_dashboard.py, batchnb/ui/charts.py); this module draws them and sends
// the user's choices. Plain SVG: no chart library, no build step, no network.

const SVG = "http://www.w3.org/2000/svg";
const STATUSES = ["completed", "failed", "cancelled", "open"];
const W = 460, H = 230;
const PAD = { left: 46, right: 14, top: 12, bottom: 34 };

function node(tag, attrs = {}, text = "") {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  if (text) el.textContent = text;
  return el;
}
function html(tag, className = "", text = "") {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text) el.textContent = text;
  return el;
}
function count(n) {
  return Number(n || 0).toLocaleString("en");
}
function ms(value) {
  if (value === null || value === undefined) return "–";
  if (value === 0) return "0";
  if (value >= 60000) return `${(value / 60000).toFixed(1)} min`;
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)} s`;
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)} ms`;
}
function percent(value) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)}%`;
}
// A value axis for data up to `value`: about four round steps (whole ones for counts).
function scale(value, whole) {
  const raw = value > 0 ? value / 4 : 1;
  let power = 10 ** Math.floor(Math.log10(raw));
  if (whole && power < 1) power = 1;
  const steps = whole ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  const step = steps.map((s) => s * power).find((s) => s >= raw);
  const max = value > 0 ? step * Math.ceil(value / step) : step;
  const ticks = [];
  for (let tick = 0; tick <= max + step / 2; tick += step) ticks.push(tick);
  return { max, ticks };
}
function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function chartFrame(title, testid) {
  const panel = html("section", "bna-chart");
  panel.dataset.testid = testid;
  panel.append(html("h4", "bna-chart-title", title));
  const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  panel.append(svg);
  const legend = html("div", "bna-legend");
  panel.append(legend);
  return { panel, svg, legend };
}
function empty(svg, text) {
  svg.append(node("text", { x: W / 2, y: H / 2, class: "bna-empty", "text-anchor": "middle" }, text));
}
function legendItems(legend, items) {
  legend.replaceChildren(
    ...items.map(([name, label]) => {
      const item = html("span", "bna-legend-item");
      const swatch = html("span", `bna-swatch bna-${name}`);
      item.append(swatch, document.createTextNode(label));
      return item;
    }),
  );
}
// Gridlines and labels of a value axis (see scale), vertical (bars up) or horizontal.
function valueAxis(svg, { max, ticks }, format, vertical, left = PAD.left) {
  for (const tick of ticks) {
    const fraction = tick / max;
    const label = format(tick);
    if (vertical) {
      const y = H - PAD.bottom - fraction * (H - PAD.top - PAD.bottom);
      svg.append(node("line", { x1: left, x2: W - PAD.right, y1: y, y2: y, class: "bna-grid" }));
      svg.append(node("text", { x: left - 6, y: y + 4, class: "bna-tick", "text-anchor": "end" }, label));
    } else {
      const x = left + fraction * (W - left - PAD.right);
      svg.append(node("line", { x1: x, x2: x, y1: PAD.top, y2: H - PAD.bottom, class: "bna-grid" }));
      svg.append(node("text", { x, y: H - PAD.bottom + 16, class: "bna-tick", "text-anchor": "middle" }, label));
    }
  }
}
// A mark that shows `tip` when hovered (and as its SVG title, for screen readers).
function tipped(mark, tip) {
  mark.dataset.tip = tip;
  mark.classList.add("bna-mark");
  mark.append(node("title", {}, tip));
  return mark;
}

function drawVolume(frame, data) {
  const { svg, legend } = frame;
  svg.replaceChildren();
  const points = data.volume || [];
  legendItems(legend, STATUSES.map((s) => [s, s]));
  if (!points.some((p) => p.created)) return empty(svg, "No documents in this period");
  const axis = scale(Math.max(...points.map((p) => p.created)), true);
  const max = axis.max;
  valueAxis(svg, axis, count, true);
  const plot = W - PAD.left - PAD.right, height = H - PAD.top - PAD.bottom;
  const slot = plot / points.length, bar = Math.max(1, Math.min(28, slot * 0.72));
  const every = Math.max(1, Math.ceil(points.length / 8));
  const unit = data.unit === "week" ? "week of " : "";
  points.forEach((point, index) => {
    const x = PAD.left + slot * index + (slot - bar) / 2;
    let y = H - PAD.bottom;
    const group = node("g", { "data-testid": "volume-bar", "data-label": point.label });
    for (const status of STATUSES) {
      const value = point[status] || 0;
      if (!value) continue;
      const h = (height * value) / max;
      y -= h;
      group.append(node("rect", { x, y, width: bar, height: h, class: `bna-${status}` }));
    }
    const parts = STATUSES.filter((s) => point[s]).map((s) => `${s} ${count(point[s])}`);
    const tip = `${unit}${point.label}: ${count(point.created)} documents` +
      (parts.length ? ` (${parts.join(", ")})` : "");
    // A full-height hit area: thin bars and empty days are easy to hover too.
    group.prepend(node("rect", { x: PAD.left + slot * index, y: PAD.top, width: slot, height, class: "bna-hit" }));
    svg.append(tipped(group, tip));
    if (index % every === 0) {
      const label = data.unit === "week" ? point.label.slice(5) : point.label.slice(5);
      svg.append(node("text", { x: x + bar / 2, y: H - PAD.bottom + 16, class: "bna-tick", "text-anchor": "middle" }, label));
    }
  });
}

function arc(cx, cy, r, inner, from, to) {
  const point = (radius, angle) => [cx + radius * Math.sin(angle), cy - radius * Math.cos(angle)];
  const large = to - from > Math.PI ? 1 : 0;
  const [x1, y1] = point(r, from), [x2, y2] = point(r, to);
  const [x3, y3] = point(inner, to), [x4, y4] = point(inner, from);
  return `M${x1},${y1} A${r},${r} 0 ${large} 1 ${x2},${y2} L${x3},${y3} A${inner},${inner} 0 ${large} 0 ${x4},${y4} Z`;
}

function drawStatus(frame, data) {
  const { svg, legend } = frame;
  svg.replaceChildren();
  const points = data.status || [];
  const total = points.reduce((sum, p) => sum + p.documents, 0);
  legendItems(legend, points.map((p) => [p.label, `${p.label} ${count(p.documents)}`]));
  if (!total) return empty(svg, "No documents in this period");
  const cx = W / 2, cy = H / 2 - 4, r = 92, inner = 58;
  let angle = 0;
  for (const point of points) {
    if (!point.documents) continue;
    const share = point.documents / total;
    // A full circle is two half arcs: one arc cannot start and end at the same point.
    const end = angle + Math.min(share, 0.9999) * 2 * Math.PI;
    const slice = node("path", { d: arc(cx, cy, r, inner, angle, end), class: `bna-${point.label}` });
    slice.dataset.testid = "status-slice";
    slice.dataset.label = point.label;
    svg.append(tipped(slice, `${point.label}: ${count(point.documents)} documents (${percent(share)})`));
    angle = end;
  }
  svg.append(node("text", { x: cx, y: cy + 2, class: "bna-total", "text-anchor": "middle" }, count(total)));
  svg.append(node("text", { x: cx, y: cy + 20, class: "bna-tick", "text-anchor": "middle" }, "documents"));
}

// Horizontal bars, one row per point; `series` lists [key, class, label] drawn side by side.
function drawRows(frame, points, series, format, whole, emptyText, testid, tipOf) {
  const { svg, legend } = frame;
  svg.replaceChildren();
  legendItems(legend, series.length > 1 ? series.map(([, name, label]) => [name, label]) : []);
  if (!points.length) return empty(svg, emptyText);
  const shown = points.slice(0, 8);
  const left = 108;
  const axis = scale(Math.max(...shown.flatMap((p) => series.map(([key]) => p[key] || 0))), whole);
  const max = axis.max;
  valueAxis(svg, axis, format, false, left);
  const rowHeight = (H - PAD.top - PAD.bottom) / shown.length;
  const bar = Math.min(14, (rowHeight * 0.7) / series.length);
  shown.forEach((point, index) => {
    const top = PAD.top + rowHeight * index + (rowHeight - bar * series.length) / 2;
    const label = point.label.length > 16 ? `${point.label.slice(0, 15)}…` : point.label;
    svg.append(node("text", { x: left - 8, y: top + bar * series.length / 2 + 4, class: "bna-category", "text-anchor": "end" }, label));
    series.forEach(([key, name, seriesLabel], number) => {
      const value = point[key] || 0;
      const width = ((W - left - PAD.right) * value) / max;
      const rect = node("rect", { x: left, y: top + bar * number, width: Math.max(width, 1), height: bar - 1, class: `bna-${name}` });
      rect.dataset.testid = testid;
      rect.dataset.label = point.label;
      svg.append(tipped(rect, tipOf(point, key, seriesLabel)));
    });
  });
}

function card(label, testid) {
  const box = html("div", "bna-card");
  box.dataset.testid = testid;
  const value = html("div", "bna-card-value", "–");
  const note = html("div", "bna-card-note");
  box.append(html("div", "bna-card-label", label), value, note);
  return { box, value, note };
}

function render({ model, el }) {
  const root = html("div", "batchnb-analytics");
  el.append(root);

  // Header: title, period, help.
  const header = html("div", "bna-header");
  const title = html("h3", "bna-title", "Analytics");
  const period = html("div", "bna-period");
  period.dataset.testid = "period";
  const heading = html("div", "bna-heading");
  heading.append(title, period);
  header.append(heading);
  const help = html("details", "batchnb-help");
  const helpSummary = html("summary");
  helpSummary.append(html("span", "batchnb-help-mark", "?"), html("span", "batchnb-help-title", "How to use the dashboard"));
  const helpBody = html("div", "batchnb-help-body");
  help.append(helpSummary, helpBody);

  // Filters: dates, presets, user, refresh, downloads.
  const bar = html("div", "bna-toolbar");
  const from = html("input", "bna-from");
  from.type = "date";
  from.dataset.testid = "from";
  const to = html("input", "bna-to");
  to.type = "date";
  to.dataset.testid = "to";
  const fromLabel = html("label", "bna-field", "From ");
  fromLabel.append(from);
  const toLabel = html("label", "bna-field", "To ");
  toLabel.append(to);
  const presets = html("div", "bna-presets");
  for (const [text, days] of [["7 days", 7], ["30 days", 30], ["90 days", 90], ["All", 0]]) {
    const button = html("button", "bna-preset", text);
    button.type = "button";
    button.dataset.days = String(days);
    button.addEventListener("click", () => {
      const today = new Date();
      const first = new Date(today.getTime() - (days - 1) * 86400000);
      setFilters(days ? isoDay(first) : "", days ? isoDay(today) : "", model.get("user"));
    });
    presets.append(button);
  }
  const userLabel = html("label", "bna-field bna-user", "User ");
  const user = html("input");
  user.placeholder = "everyone";
  user.dataset.testid = "user";
  const listId = `bna-users-${Math.random().toString(36).slice(2)}`;
  user.setAttribute("list", listId);
  const users = html("datalist");
  users.id = listId;
  userLabel.append(user, users);
  bar.append(fromLabel, toLabel, presets, userLabel);
  const actions = html("div", "bna-actions");
  const refresh = html("button", "bna-refresh", "Refresh");
  refresh.type = "button";
  refresh.title = "Read the figures again";
  const downloads = html("div", "bna-downloads");
  downloads.append(html("span", "bna-downloads-label", "Report"));
  for (const [format, text, label] of [["xlsx", "Excel", "Excel report"], ["html", "HTML", "HTML report"]]) {
    const button = html("button", "bna-download", `⤓ ${text}`);
    button.type = "button";
    button.dataset.format = format;
    button.setAttribute("aria-label", label);
    button.title = `Download the period as ${label === "Excel report" ? "an Excel workbook" : "one HTML page"}`;
    downloads.append(button);
  }
  actions.append(refresh, downloads);
  header.append(actions);

  const status = html("div", "bna-status");
  status.dataset.testid = "status";
  const cardsRow = html("div", "bna-cards");
  const cards = {
    documents: card("Documents", "card-documents"),
    success: card("Success rate", "card-success"),
    pages: card("Pages", "card-pages"),
    p50: card("p50 processing", "card-p50"),
    p95: card("p95 processing", "card-p95"),
  };
  cardsRow.append(...Object.values(cards).map((c) => c.box));
  const grid = html("div", "bna-charts");
  const volume = chartFrame("Documents over time", "chart-volume");
  const breakdown = chartFrame("Status breakdown", "chart-status");
  const timing = chartFrame("Processing time per document type", "chart-timing");
  const failures = chartFrame("Failures by kind", "chart-failures");
  grid.append(volume.panel, breakdown.panel, timing.panel, failures.panel);
  const tooltip = html("div", "bna-tooltip");
  tooltip.dataset.testid = "tooltip";
  root.append(header, help, bar, status, cardsRow, grid, tooltip);

  function setFilters(start, end, who) {
    model.set("start", start);
    model.set("end", end);
    model.set("user", who);
    model.save_changes();
  }
  from.addEventListener("change", () => setFilters(from.value, to.value, model.get("user")));
  to.addEventListener("change", () => setFilters(from.value, to.value, model.get("user")));
  user.addEventListener("change", () => setFilters(model.get("start"), model.get("end"), user.value.trim()));
  refresh.addEventListener("click", () => model.send({ type: "refresh" }));
  for (const button of downloads.querySelectorAll("button")) {
    button.addEventListener("click", () => {
      status.textContent = "Preparing the report…";
      status.className = "bna-status";
      model.send({ type: "report", format: button.dataset.format });
    });
  }

  // Values on hover: one tooltip for the whole dashboard, placed beside the pointer.
  function onOver(event) {
    const mark = event.target.closest(".bna-mark");
    if (!mark || !root.contains(mark)) return;
    tooltip.textContent = mark.dataset.tip;
    tooltip.classList.add("bna-visible");
    mark.classList.add("bna-hover");
  }
  function onMove(event) {
    if (!tooltip.classList.contains("bna-visible")) return;
    const box = root.getBoundingClientRect();
    const x = Math.min(event.clientX - box.left + 12, box.width - tooltip.offsetWidth - 4);
    tooltip.style.left = `${Math.max(0, x)}px`;
    tooltip.style.top = `${event.clientY - box.top + 14}px`;
  }
  function onOut(event) {
    const mark = event.target.closest(".bna-mark");
    if (!mark) return;
    mark.classList.remove("bna-hover");
    tooltip.classList.remove("bna-visible");
  }
  root.addEventListener("mouseover", onOver);
  root.addEventListener("mousemove", onMove);
  root.addEventListener("mouseout", onOut);

  function drawFilters() {
    from.value = model.get("start");
    to.value = model.get("end");
    user.value = model.get("user");
    userLabel.hidden = !model.get("admin");
    users.replaceChildren(...model.get("users").map((name) => {
      const option = html("option");
      option.value = name;
      return option;
    }));
    helpBody.innerHTML = model.get("help_body");
  }
  function drawState() {
    const error = model.get("error");
    root.classList.toggle("bna-busy", model.get("busy"));
    if (error) {
      status.textContent = error;
      status.className = "bna-status bna-error";
    } else if (model.get("busy")) {
      status.textContent = "Updating…";
      status.className = "bna-status";
    } else if (status.classList.contains("bna-error") || status.textContent === "Updating…") {
      status.textContent = "";
      status.className = "bna-status";
    }
  }
  function drawData() {
    const data = model.get("data") || {};
    const c = data.cards || {};
    period.textContent = model.get("period");
    cards.documents.value.textContent = count(c.documents);
    cards.documents.note.textContent = `in ${count(c.batches)} batches`;
    cards.success.value.textContent = percent(c.success_rate);
    cards.success.note.textContent = `${count(c.completed)} completed, ${count(c.failed)} failed`;
    cards.pages.value.textContent = count(c.pages);
    cards.pages.note.textContent = "of completed documents";
    cards.p50.value.textContent = ms(c.p50_ms);
    cards.p50.note.textContent = "median per document";
    cards.p95.value.textContent = ms(c.p95_ms);
    cards.p95.note.textContent = "95% finish within";
    drawVolume(volume, data);
    drawStatus(breakdown, data);
    drawRows(
      timing, data.timing || [], [["p50", "p50", "p50"], ["p95", "p95", "p95"]], ms, false,
      "No completed documents in this period", "timing-bar",
      (p, key) => `${p.label} ${key}: ${ms(p[key])} (${count(p.jobs)} documents, mean ${ms(p.mean)})`,
    );
    drawRows(
      failures, data.failures || [], [["documents", "failed", "documents"]], count, true,
      "No failures in this period", "failure-bar",
      (p) => `${p.label}: ${count(p.documents)} documents (${percent(p.share)}), e.g. ${p.example}`,
    );
  }
  function onMessage(message, buffers) {
    if (message.type === "report") {
      const blob = new Blob([buffers[0]], { type: message.mime });
      const url = URL.createObjectURL(blob);
      const link = html("a");
      link.href = url;
      link.download = message.name;
      link.hidden = true;
      root.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      status.textContent = `Downloaded ${message.name}`;
      status.className = "bna-status bna-ok";
    } else if (message.type === "error") {
      status.textContent = message.message;
      status.className = "bna-status bna-error";
    }
  }

  const filterEvents = ["change:start", "change:end", "change:user", "change:admin", "change:users", "change:help_body"];
  for (const event of filterEvents) model.on(event, drawFilters);
  model.on("change:busy", drawState);
  model.on("change:error", drawState);
  model.on("change:data", drawData);
  model.on("change:period", drawData);
  model.on("msg:custom", onMessage);
  drawFilters();
  drawState();
  drawData();
  return () => {
    for (const event of filterEvents) model.off(event, drawFilters);
    model.off("change:busy", drawState);
    model.off("change:error", drawState);
    model.off("change:data", drawData);
    model.off("change:period", drawData);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
