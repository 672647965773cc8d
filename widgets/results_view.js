// batchnb ResultsView grid: one page of a batch's results, searched, filtered and sorted in
// the kernel (batchnb/ui/results_view.py). This module draws the page, sets the query, and
// sends edits, row clicks and review marks. No build step, no network.

const SEARCH_DELAY_MS = 250;

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

function render({ model, el }) {
  const root = h("div", { class: "batchnb-results-grid" });
  el.append(root);
  let editing = null; // "<key>:<column>" of the cell being edited
  let searchTimer = null;

  const set = (changes) => {
    for (const [key, value] of Object.entries(changes)) model.set(key, value);
    model.save_changes();
  };
  const send = (content) => model.send(content);

  // -- toolbar ----------------------------------------------------------------------------------
  const title = h("span", { class: "brg-title" });
  const summary = h("span", { class: "brg-summary", "data-testid": "review-summary" });
  const search = h("input", {
    type: "search",
    class: "brg-search",
    placeholder: "Search values, files, errors…",
    "aria-label": "search",
  });
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => set({ search: search.value }), SEARCH_DELAY_MS);
  });
  const filter = h("select", { class: "brg-filter", "aria-label": "filter" });
  filter.addEventListener("change", () => set({ filter: filter.value }));
  const mode = h(
    "label",
    { class: "brg-mode" },
    h("input", {
      type: "checkbox",
      class: "brg-mode-box",
      onchange: (event) => set({ mode: event.target.checked ? "multi-row" : "normal" }),
    }),
    " one row per item",
  );
  const refresh = h("button", { class: "brg-refresh", onclick: () => send({ type: "refresh" }) }, "↻ Refresh");
  const message = h("div", { class: "brg-message", "aria-live": "polite" });
  const table = h("table", { class: "brg-table", "data-testid": "results-table" });
  const tableWrap = h("div", { class: "brg-table-wrap" }, table);
  const pager = h("div", { class: "brg-pager" });
  root.append(
    h("div", { class: "brg-head" }, title, summary),
    h("div", { class: "brg-toolbar" }, search, filter, mode, h("span", { class: "brg-spacer" }), refresh),
    message,
    tableWrap,
    pager,
  );

  function drawToolbar() {
    title.textContent = model.get("title");
    summary.textContent = model.get("summary");
    if (document.activeElement !== search) search.value = model.get("search");
    filter.replaceChildren(
      ...model.get("filters").map(([value, label]) => h("option", { value, selected: value === model.get("filter") }, label)),
    );
    filter.value = model.get("filter");
    mode.hidden = !model.get("has_arrays");
    mode.querySelector("input").checked = model.get("mode") === "multi-row";
    message.textContent = model.get("message");
    root.classList.toggle("brg-loading", model.get("loading"));
  }

  // -- the table --------------------------------------------------------------------------------
  function sortBy(key) {
    if (model.get("sort") === key) set({ descending: !model.get("descending") });
    else set({ sort: key, descending: false });
  }

  function cell(row, column) {
    const id = `${row.key}:${column.key}`;
    const text = row.cells[column.key] ?? "";
    const classes = ["brg-cell", `brg-kind-${column.kind}`];
    if (text.length <= 16) classes.push("brg-short"); // dates and amounts stay on one line
    if (row.classes[column.key]) classes.push(...row.classes[column.key].split(" ").map((c) => `brg-${c}`));
    const error = model.get("edit_errors")[id];
    if (editing === id) {
      // Money is edited without its thousands separators ("1234.50").
      const initial = column.money ? text.replaceAll(",", "") : text;
      const input = h("input", { type: "text", class: "brg-input", value: initial, "aria-label": `correct ${column.label}` });
      const save = () => {
        editing = null;
        send({ type: "edit", key: row.key, column: column.key, value: input.value });
        drawTable();
      };
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") save();
        if (event.key === "Escape") {
          editing = null;
          drawTable();
        }
      });
      input.addEventListener("click", (event) => event.stopPropagation());
      setTimeout(() => input.focus(), 0);
      return h("td", { class: `${classes.join(" ")} brg-editing`, "data-column": column.key }, input);
    }
    const editable = column.editable && row.status === "completed" && (column.kind.startsWith("item") ? row.item !== null : true);
    const td = h(
      "td",
      {
        class: classes.join(" "),
        "data-column": column.key,
        title: row.titles[column.key] || (editable ? "double-click to correct" : undefined),
      },
      h("span", { class: "brg-text" }, column.key === "status" ? h("span", { class: `brg-badge brg-status-${text}` }, text) : text),
      editable
        ? h(
            "button",
            {
              class: "brg-edit",
              title: "correct this value",
              "aria-label": `correct ${column.label}`,
              onclick: (event) => {
                event.stopPropagation();
                editing = id;
                drawTable();
              },
            },
            "✎",
          )
        : null,
      error ? h("div", { class: "brg-edit-error", "data-testid": "edit-error" }, error) : null,
    );
    if (editable) {
      td.addEventListener("dblclick", (event) => {
        event.stopPropagation();
        editing = id;
        drawTable();
      });
    }
    return td;
  }

  function drawTable() {
    const columns = model.get("columns");
    const rows = model.get("rows");
    const sort = model.get("sort");
    const arrow = model.get("descending") ? " ▼" : " ▲";
    const head = h(
      "tr",
      {},
      columns.map((column) =>
        h(
          "th",
          {
            class: `brg-th ${sort === column.key ? "brg-sorted" : ""}`,
            "data-column": column.key,
            title: `sort by ${column.label}`,
            onclick: () => sortBy(column.key),
          },
          column.label + (sort === column.key ? arrow : ""),
        ),
      ),
      h("th", { class: "brg-th brg-actions-head" }, ""),
    );
    const body = rows.map((row) => {
      const tr = h(
        "tr",
        {
          class: [
            "brg-row",
            `brg-row-${row.status}`,
            row.reviewed ? "brg-row-reviewed" : "",
            row.flags.length ? "brg-row-flagged" : "",
            model.get("selected") === row.document_id ? "brg-row-selected" : "",
          ].join(" "),
          "data-document": row.document_id,
          "data-testid": "result-row",
          title: row.flags.length ? row.flags.map((f) => `⚑ ${f}`).join("\n") : undefined,
          onclick: () => send({ type: "open", key: row.key }),
        },
        columns.map((column) => cell(row, column)),
      );
      const actions = h("td", { class: "brg-actions" });
      if (row.flags.length) actions.append(h("span", { class: "brg-flag-mark", title: row.flags.join("\n") }, "⚑"));
      if (row.status === "completed") {
        actions.append(
          h(
            "button",
            {
              class: `brg-review ${row.reviewed ? "brg-reviewed" : ""}`,
              title: row.reviewed ? "reviewed: click to unmark" : "mark reviewed",
              "aria-label": row.reviewed ? "unmark reviewed" : "mark reviewed",
              onclick: (event) => {
                event.stopPropagation();
                send({ type: "review", document_id: row.document_id, reviewed: !row.reviewed });
              },
            },
            row.reviewed ? "✓ Reviewed" : "Mark reviewed",
          ),
        );
      }
      tr.append(actions);
      return tr;
    });
    const empty = !rows.length
      ? [h("tr", {}, h("td", { class: "brg-empty", colspan: columns.length + 1 }, model.get("loading") ? "Reading the results…" : "No rows match."))]
      : [];
    table.replaceChildren(h("thead", {}, head), h("tbody", {}, body, empty));
  }

  // Only the classes change: a redraw would replace the cell a double-click is landing on.
  function markSelected() {
    for (const tr of table.querySelectorAll("tr.brg-row")) {
      tr.classList.toggle("brg-row-selected", Number(tr.dataset.document) === model.get("selected"));
    }
  }

  function drawPager() {
    const total = model.get("total");
    const size = model.get("page_size");
    const page = model.get("page");
    const pages = Math.max(Math.ceil(total / size), 1);
    const first = total ? page * size + 1 : 0;
    const last = Math.min((page + 1) * size, total);
    const of = total === model.get("count") ? `${total}` : `${total} (of ${model.get("count")})`;
    pager.replaceChildren(
      h("button", { class: "brg-prev", disabled: page <= 0, onclick: () => set({ page: page - 1 }) }, "‹ Prev"),
      h("span", { class: "brg-range", "data-testid": "row-range" }, `${first}–${last} of ${of} · page ${page + 1} of ${pages}`),
      h("button", { class: "brg-next", disabled: page >= pages - 1, onclick: () => set({ page: page + 1 }) }, "Next ›"),
    );
  }

  function drawAll() {
    drawToolbar();
    drawTable();
    drawPager();
  }

  const listeners = [
    ["change:rows", () => { drawTable(); drawPager(); }],
    ["change:columns", drawTable],
    ["change:edit_errors", drawTable],
    ["change:selected", markSelected],
    ["change:sort", drawTable],
    ["change:descending", drawTable],
    ["change:total", drawPager],
    ["change:page", drawPager],
    ["change:count", drawPager],
    ["change:loading", drawAll],
    ["change:summary", drawToolbar],
    ["change:message", drawToolbar],
    ["change:filter", drawToolbar],
    ["change:mode", drawToolbar],
    ["change:has_arrays", drawToolbar],
    ["change:title", drawToolbar],
  ];
  for (const [event, listener] of listeners) model.on(event, listener);
  drawAll();
  return () => {
    clearTimeout(searchTimer);
    for (const [event, listener] of listeners) model.off(event, listener);
  };
}

export default { render };
