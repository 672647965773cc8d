// batchnb BatchManager: the table of batches, its filters, operations bar and dialogs.
// The kernel decides (batchnb/ui/batch_manager.py, batch_table.py has the message protocol);
// this module draws the synced state, writes filters back, and sends the user's clicks.
// Downloads arrive as chunks over the comm and are saved from a Blob. No build step, no network.

const COLUMNS = [
  // [key shown, header, sort column]
  ["id", "ID", "id"],
  ["name", "Name", "name"],
  ["status", "Status", "status"],
  ["progress", "Documents", "document_count"],
  ["failed", "Failed", "failed"],
  ["owner", "Owner", "owner"],
  ["created_at", "Created", "created_at"],
  ["completed_at", "Finished", "completed_at"],
];
const NEWEST_FIRST = new Set(["created_at", "completed_at", "updated_at", "id"]);
const SEGMENTS = ["completed", "failed", "cancelled", "processing", "pending"];
const RUNNING = new Set(["pending", "processing"]);
const STATUS_LABELS = { completed_with_errors: "completed with errors" };

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
  }
  if (text !== "") node.textContent = text;
  return node;
}

function button(label, attributes = {}) {
  return element("button", { type: "button", ...attributes }, label);
}

function select(options, value, attributes = {}) {
  const node = element("select", attributes);
  for (const [optionValue, label] of options) {
    const option = element("option", { value: optionValue }, label);
    node.append(option);
  }
  node.value = value;
  return node;
}

// "12-05 08:36" within the current year, "2025-12-05" before it; the full moment is the cell's
// tooltip. Short enough for the table to fit JupyterLab's notebook width.
function formatMoment(iso) {
  if (!iso) return "–";
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return iso;
  const pad = (n) => String(n).padStart(2, "0");
  const day = `${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}`;
  if (moment.getFullYear() !== new Date().getFullYear()) return `${moment.getFullYear()}-${day}`;
  return `${day} ${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
}

function fullMoment(iso) {
  const moment = new Date(iso);
  return iso && !Number.isNaN(moment.getTime()) ? moment.toString() : "";
}

function formatSize(n) {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

function badge(status) {
  return element(
    "span",
    { class: `bnm-badge bnm-status-${status}`, "data-testid": "status-badge" },
    STATUS_LABELS[status] || status,
  );
}

function progressCell(row) {
  const cell = element("div", { class: "bnm-progress" });
  const total = SEGMENTS.reduce((sum, s) => sum + (row[s] || 0), 0);
  const done = (row.completed || 0) + (row.failed || 0) + (row.cancelled || 0);
  const breakdown = SEGMENTS.filter((s) => row[s]).map((s) => `${row[s]} ${s}`).join(", ");
  const bar = element("div", {
    class: "bnm-bar",
    role: "progressbar",
    "aria-valuemin": "0",
    "aria-valuemax": String(total),
    "aria-valuenow": String(done),
    title: breakdown || "no documents",
    "data-testid": "progress-bar",
  });
  for (const status of SEGMENTS) {
    if (!total || !row[status]) continue;
    const part = element("div", { class: `bnm-seg bnm-seg-${status}` });
    part.style.width = `${((100 * row[status]) / total).toFixed(2)}%`;
    bar.append(part);
  }
  const text = element("span", { class: "bnm-progress-text", "data-testid": "progress-text" },
    `${done}/${total}`);
  cell.append(bar, text);
  return cell;
}

// Bytes sent by the kernel (file_begin, file_chunk..., file_end) saved as a download.
function downloader() {
  let parts = [];
  let meta = null;
  return (message, buffers) => {
    if (message.type === "file_begin") {
      parts = [];
      meta = message;
    } else if (message.type === "file_chunk" && meta) {
      const view = buffers[0];
      // Copied: the comm may reuse the buffer it handed over.
      parts.push(new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice());
    } else if (message.type === "file_end" && meta) {
      const blob = new Blob(parts, { type: meta.mime || "application/octet-stream" });
      const url = URL.createObjectURL(blob);
      const link = element("a", { href: url, download: meta.name, style: "display:none" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      parts = [];
      meta = null;
    }
  };
}

function render({ model, el }) {
  const root = element("div", { class: "batchnb-manager-table", "data-testid": "batch-manager" });

  // ---- filters (built once: redrawing them would take the focus away while typing)
  const filters = element("div", { class: "bnm-filters", "data-testid": "filters" });
  const search = element("input", {
    type: "search", placeholder: "Search batch or file names", "data-testid": "search",
    "aria-label": "Search batch or file names",
  });
  const status = select([["", "Any status"]], "", { "data-testid": "filter-status", "aria-label": "Status" });
  const from = element("input", { type: "date", "data-testid": "filter-from", "aria-label": "Created from" });
  const to = element("input", { type: "date", "data-testid": "filter-to", "aria-label": "Created to" });
  const owner = element("input", {
    type: "text", placeholder: "Owner", "data-testid": "filter-owner", "aria-label": "Owner",
  });
  const failures = select(
    [["", "With or without failures"], ["yes", "With failures"], ["no", "Without failures"]],
    "", { "data-testid": "filter-failures", "aria-label": "Failures" },
  );
  const refresh = button("Refresh", { "data-testid": "refresh", title: "Read the page again" });
  const live = element("span", { class: "bnm-live", "data-testid": "live" });
  const dates = element("span", { class: "bnm-dates" });
  dates.append(from, element("span", { class: "bnm-dash" }, "–"), to);
  filters.append(search, status, dates, owner, failures, refresh, live);

  const message = element("div", { class: "bnm-message", "data-testid": "message", role: "status" });
  const opsBar = element("div", { class: "bnm-ops", "data-testid": "ops-bar" });
  const tableWrap = element("div", { class: "bnm-table-wrap" });
  const pager = element("div", { class: "bnm-pager", "data-testid": "pager" });
  const dialogLayer = element("div", { class: "bnm-dialog-layer", "data-testid": "dialog-layer" });
  root.append(filters, message, opsBar, tableWrap, pager, dialogLayer);
  el.append(root);

  // ---- writing filters back
  const setState = (changes) => {
    for (const [name, value] of Object.entries(changes)) model.set(name, value);
    model.save_changes();
  };
  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => setState({ search: search.value }), 300);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      clearTimeout(searchTimer);
      setState({ search: search.value });
    }
  });
  status.addEventListener("change", () => setState({ status: status.value }));
  from.addEventListener("change", () => setState({ created_from: from.value }));
  to.addEventListener("change", () => setState({ created_to: to.value }));
  owner.addEventListener("change", () => setState({ owner: owner.value }));
  failures.addEventListener("change", () => setState({ has_failures: failures.value }));
  refresh.addEventListener("click", () => model.send({ type: "refresh" }));

  function drawFilters() {
    const options = model.get("options") || {};
    if (status.options.length <= 1 && options.statuses) {
      for (const value of options.statuses) {
        status.append(element("option", { value }, STATUS_LABELS[value] || value));
      }
    }
    if (document.activeElement !== search) search.value = model.get("search");
    status.value = model.get("status");
    from.value = model.get("created_from");
    to.value = model.get("created_to");
    owner.value = model.get("owner");
    owner.hidden = !options.admin;
    failures.value = model.get("has_failures");
    live.textContent = model.get("live") ? "● live" : "";
    live.title = model.get("live") ? "Running batches shown: the page refreshes itself" : "";
  }

  function drawMessage() {
    const current = model.get("message") || {};
    message.textContent = current.text || "";
    message.className = `bnm-message bnm-${current.kind || "info"}`;
    message.hidden = !current.text;
  }

  // ---- selection and actions
  const selected = () => new Set(model.get("selected") || []);
  const act = (action, ids, choices = {}) => model.send({ type: "action", action, ids, choices });

  function toggle(id, on) {
    const chosen = selected();
    if (on) chosen.add(id);
    else chosen.delete(id);
    setState({ selected: [...chosen].sort((a, b) => a - b) });
  }

  function drawOps() {
    const chosen = [...selected()];
    opsBar.replaceChildren();
    opsBar.hidden = chosen.length === 0;
    if (!chosen.length) return;
    const count = element("span", { class: "bnm-count", "data-testid": "selected-count" },
      `${chosen.length} selected`);
    const options = model.get("options") || {};
    const statusChoice = select(
      [["", "Set status…"], ...(options.bulk_statuses || []).map((s) => [s, s])], "",
      { "data-testid": "ops-status", "aria-label": "Status to set" },
    );
    const setStatus = button("Set status", { "data-testid": "ops-set-status", disabled: "" });
    statusChoice.addEventListener("change", () => { setStatus.disabled = !statusChoice.value; });
    setStatus.addEventListener("click", () => act("set_status", chosen, { status: statusChoice.value }));
    const actions = [
      ["Export…", "export", ""],
      ["Retry failed", "retry", ""],
      ["Cancel", "cancel", ""],
      ["Delete", "delete", "bnm-danger"],
    ].map(([label, action, extra]) => {
      const node = button(label, { "data-testid": `ops-${action}`, class: extra });
      node.addEventListener("click", () => act(action, chosen));
      return node;
    });
    const clear = button("Clear selection", { "data-testid": "ops-clear", class: "bnm-link" });
    clear.addEventListener("click", () => setState({ selected: [] }));
    opsBar.append(count, ...actions, statusChoice, setStatus, clear);
  }

  function header(key, label, sortKey) {
    const th = element("th", { "data-column": key, scope: "col" });
    const current = model.get("sort") === sortKey;
    const descending = model.get("descending");
    const sortButton = button(label, {
      class: `bnm-sort${current ? " bnm-sorted" : ""}`,
      "data-testid": `sort-${key}`,
      "aria-sort": current ? (descending ? "descending" : "ascending") : "none",
      title: `Sort by ${label.toLowerCase()}`,
    });
    sortButton.append(element("span", { class: "bnm-arrow" }, current ? (descending ? "▼" : "▲") : ""));
    sortButton.addEventListener("click", () => {
      if (current) setState({ descending: !descending });
      else setState({ sort: sortKey, descending: NEWEST_FIRST.has(sortKey) });
    });
    th.append(sortButton);
    return th;
  }

  function rowActions(row) {
    const cell = element("td", { class: "bnm-actions-cell" });
    const group = element("div", { class: "bnm-actions" });
    cell.append(group);
    const items = [
      ["Open", "open", true],
      ["Export", "export", row.completed > 0],
      ["Retry", "retry", row.failed > 0],
      ["Cancel", "cancel", RUNNING.has(row.status)],
      ["Delete", "delete", true],
    ];
    for (const [label, action, enabled] of items) {
      const node = button(label, {
        class: `bnm-row-action${action === "delete" ? " bnm-danger" : ""}`,
        "data-action": action,
        "data-testid": `row-${action}`,
        disabled: enabled ? false : "",
        title: `${label} batch ${row.id}`,
      });
      node.addEventListener("click", () => act(action, [row.id]));
      group.append(node);
    }
    return cell;
  }

  // The owner column only for admins: everyone else sees only their own batches.
  const columns = () => COLUMNS.filter(([key]) => key !== "owner" || (model.get("options") || {}).admin);

  function drawTable() {
    const rows = model.get("rows") || [];
    const chosen = selected();
    const table = element("table", { class: "bnm-table", "data-testid": "batch-table" });
    const head = element("thead");
    const headRow = element("tr");
    const all = element("input", { type: "checkbox", "data-testid": "select-page", "aria-label": "Select the page" });
    all.checked = rows.length > 0 && rows.every((row) => chosen.has(row.id));
    all.addEventListener("change", () => {
      const next = selected();
      for (const row of rows) {
        if (all.checked) next.add(row.id);
        else next.delete(row.id);
      }
      setState({ selected: [...next].sort((a, b) => a - b) });
    });
    const allCell = element("th", { class: "bnm-check" });
    allCell.append(all);
    headRow.append(allCell, ...columns().map(([key, label, sortKey]) => header(key, label, sortKey)));
    headRow.append(element("th", { class: "bnm-actions-head" }, "Actions"));
    head.append(headRow);
    const body = element("tbody");
    const opened = model.get("opened");
    for (const row of rows) {
      const tr = element("tr", {
        "data-testid": "batch-row", "data-id": String(row.id), "data-status": row.status,
        class: `${chosen.has(row.id) ? "bnm-selected" : ""}${row.id === opened ? " bnm-opened" : ""}`,
      });
      const check = element("input", { type: "checkbox", "data-testid": "select-row", "aria-label": `Select batch ${row.id}` });
      check.checked = chosen.has(row.id);
      check.addEventListener("change", () => toggle(row.id, check.checked));
      const checkCell = element("td", { class: "bnm-check" });
      checkCell.append(check);
      tr.append(checkCell);
      for (const [key] of columns()) {
        const td = element("td", { "data-column": key });
        if (key === "status") td.append(badge(row.status));
        else if (key === "progress") td.append(progressCell(row));
        else if (key === "created_at" || key === "completed_at") {
          td.textContent = formatMoment(row[key]);
          td.title = fullMoment(row[key]);
        } else if (key === "failed") {
          td.textContent = String(row.failed || 0);
          if (row.failed) td.classList.add("bnm-has-failures");
        } else {
          td.textContent = String(row[key] ?? "");
          if (key === "name") td.title = row.name;
        }
        tr.append(td);
      }
      tr.append(rowActions(row));
      body.append(tr);
    }
    table.append(head, body);
    tableWrap.replaceChildren(table);
    if (!rows.length) {
      tableWrap.append(element("div", { class: "bnm-empty", "data-testid": "empty" },
        "No batches match these filters."));
    }
  }

  function drawPager() {
    const page = model.get("page");
    const pages = model.get("pages");
    const total = model.get("total");
    const previous = button("‹ Previous", { "data-testid": "page-previous", disabled: page <= 1 ? "" : false });
    const next = button("Next ›", { "data-testid": "page-next", disabled: page >= pages ? "" : false });
    previous.addEventListener("click", () => setState({ page: page - 1 }));
    next.addEventListener("click", () => setState({ page: page + 1 }));
    const where = element("span", { "data-testid": "page-info" },
      `Page ${page} of ${pages} · ${total} batch${total === 1 ? "" : "es"}`);
    const size = select([10, 25, 50, 100].map((n) => [String(n), `${n} per page`]),
      String(model.get("page_size")), { "data-testid": "page-size", "aria-label": "Rows per page" });
    size.addEventListener("change", () => setState({ page_size: Number(size.value) }));
    pager.replaceChildren(previous, where, next, size);
  }

  // ---- dialogs
  function choiceSelect(name, options, value) {
    const label = element("label", { class: "bnm-choice" });
    label.append(element("span", {}, name === "extractor" ? "Extractor" : name[0].toUpperCase() + name.slice(1)));
    const node = select(options, value, { "data-testid": `dialog-${name}`, "data-choice": name });
    label.append(node);
    return [label, node];
  }

  function drawDialog() {
    const dialog = model.get("dialog") || {};
    dialogLayer.replaceChildren();
    dialogLayer.hidden = !dialog.kind;
    root.classList.toggle("bnm-has-dialog", Boolean(dialog.kind));
    if (!dialog.kind) return;
    const stage = dialog.stage || "ask";
    const box = element("div", {
      class: `bnm-dialog bnm-dialog-${dialog.kind}`, role: "dialog", "aria-modal": "true",
      "data-testid": "dialog", "data-stage": stage,
    });
    box.append(element("h3", { class: "bnm-dialog-title", "data-testid": "dialog-title" }, dialog.title || ""));
    box.append(element("p", { class: "bnm-dialog-text", "data-testid": "dialog-text" }, dialog.text || ""));
    if (dialog.batches && dialog.batches.length) {
      const list = element("ul", { class: "bnm-dialog-batches" });
      for (const batch of dialog.batches) {
        list.append(element("li", {}, `#${batch.id} ${batch.name} (${batch.owner})`));
      }
      if (dialog.more) list.append(element("li", {}, `and ${dialog.more} more`));
      box.append(list);
    }
    const chosen = {};
    const values = dialog.values || {};
    for (const [name, options] of Object.entries(dialog.choices || {})) {
      const [label, node] = choiceSelect(name, options, values[name] ?? "");
      node.disabled = stage !== "ask";
      chosen[name] = node;
      box.append(label);
    }
    if (dialog.kind === "export" && stage !== "ask") {
      const progress = dialog.progress || { done: 0, total: 0 };
      const bar = element("progress", {
        class: "bnm-export-progress", "data-testid": "export-progress",
        max: String(Math.max(progress.total, 1)), value: String(progress.done),
      });
      box.append(bar);
    }
    if (dialog.status) {
      box.append(element("p", { class: "bnm-dialog-status", "data-testid": "dialog-status" }, dialog.status));
    }
    if (stage === "busy") {
      box.append(element("p", { class: "bnm-dialog-busy", "data-testid": "dialog-busy" }, "Working…"));
    }
    if (dialog.result) {
      box.append(element("p", { class: "bnm-dialog-result", "data-testid": "dialog-result" }, dialog.result));
    }
    if (dialog.error) {
      box.append(element("p", { class: "bnm-dialog-error", "data-testid": "dialog-error", role: "alert" }, dialog.error));
    }
    // Sheets mode is Excel's only: offered with the xlsx format alone.
    if (chosen.format && chosen.mode) {
      const sheets = [...chosen.mode.options].find((option) => option.value === "sheets");
      const fit = () => {
        if (!sheets) return;
        sheets.disabled = chosen.format.value !== "xlsx";
        if (sheets.disabled && chosen.mode.value === "sheets") chosen.mode.value = "normal";
      };
      chosen.format.addEventListener("change", fit);
      fit();
    }
    const buttons = element("div", { class: "bnm-dialog-buttons" });
    if (stage === "ask") {
      const confirm = button(dialog.kind === "export" ? "Export" : dialog.confirm_label || "Confirm", {
        class: `bnm-primary${dialog.danger ? " bnm-danger-fill" : ""}`,
        "data-testid": "dialog-confirm",
        disabled: dialog.can_confirm === false ? "" : false,
      });
      confirm.addEventListener("click", () => {
        const choices = {};
        for (const [name, node] of Object.entries(chosen)) choices[name] = node.value;
        confirm.disabled = true;
        model.send({ type: "confirm", choices });
      });
      buttons.append(confirm);
    }
    if (dialog.kind === "export" && stage === "ready") {
      const file = dialog.file || {};
      const save = button(`Download ${file.name || "file"} (${formatSize(file.size || 0)})`, {
        class: "bnm-primary", "data-testid": "dialog-download",
      });
      save.addEventListener("click", () => model.send({ type: "download" }));
      buttons.append(save);
    }
    const close = button(stage === "ask" ? "Back" : "Close", {
      "data-testid": "dialog-close", disabled: stage === "busy" ? "" : false,
    });
    close.addEventListener("click", () => model.send({ type: "close_dialog" }));
    buttons.append(close);
    box.append(buttons);
    box.tabIndex = -1;
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && stage !== "busy") model.send({ type: "close_dialog" });
    });
    dialogLayer.append(box);
  }

  // ---- wiring
  const save = downloader();
  const onMessage = (message, buffers) => save(message, buffers || []);
  const drawRows = () => { drawTable(); drawPager(); drawFilters(); };
  const drawSelection = () => { drawOps(); drawTable(); };
  const listeners = [
    ["change:rows change:total change:page change:pages change:page_size change:opened", drawRows],
    ["change:sort change:descending", drawTable],
    ["change:status change:search change:created_from change:created_to change:owner change:has_failures change:live change:options", drawFilters],
    ["change:selected", drawSelection],
    ["change:message", drawMessage],
    ["change:dialog", drawDialog],
  ];
  // One event name per call: the model proxy of some anywidget versions takes no lists.
  for (const [events, handler] of listeners) {
    for (const name of events.split(" ")) model.on(name, handler);
  }
  model.on("msg:custom", onMessage);
  drawFilters();
  drawMessage();
  drawOps();
  drawTable();
  drawPager();
  drawDialog();
  return () => {
    for (const [events, handler] of listeners) {
      for (const name of events.split(" ")) model.off(name, handler);
    }
    model.off("msg:custom", onMessage);
    clearTimeout(searchTimer);
  };
}

export default { render };
