// batchnb DocumentView: one document's page with each value's evidence boxed and marked.
// Python (batchnb/ui/document_view.py) reads and decides; this module draws the synced state,
// turns pages, jumps to a field's evidence and sends edits. No build step, no network.

const FLASH_MS = 1600;

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

function editor(initial, onSave, onCancel) {
  const input = h("input", { type: "text", class: "bdv-input", value: initial });
  const save = () => onSave(input.value);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") save();
    if (event.key === "Escape") onCancel();
  });
  const form = h(
    "span",
    { class: "bdv-editor" },
    input,
    h("button", { class: "bdv-save", onclick: save }, "Save"),
    h("button", { class: "bdv-cancel", onclick: onCancel }, "Cancel"),
  );
  setTimeout(() => input.focus(), 0);
  return form;
}

function render({ model, el }) {
  const root = h("div", { class: "batchnb-document-view" });
  el.append(root);
  let editing = null; // the path being edited
  let pendingFocus = null; // a field to flash once its page is drawn
  let lastFocus = 0;
  let activeField = null; // the field chosen last: its evidence stays outlined

  const header = h("div", { class: "bdv-header" });
  const message = h("div", { class: "bdv-message", "aria-live": "polite" });
  const fieldList = h("div", { class: "bdv-fields", "data-testid": "document-fields" });
  const nav = h("div", { class: "bdv-nav" });
  const imageBox = h("div", { class: "bdv-image" });
  const textBox = h("div", { class: "bdv-text", "data-testid": "page-text" });
  const pageArea = h("div", { class: "bdv-page" }, nav, imageBox, textBox);
  root.append(header, message, h("div", { class: "bdv-body" }, fieldList, pageArea));

  const send = (content) => model.send(content);

  function setPage(number) {
    const count = model.get("pages").length;
    if (number < 1 || number > count || number === model.get("page")) return;
    model.set("page", number);
    model.save_changes();
  }

  function evidenceOf(name) {
    return root.querySelectorAll(
      `.bdv-box[data-field="${CSS.escape(name)}"], mark[data-field="${CSS.escape(name)}"]`,
    );
  }

  function markActive() {
    for (const node of root.querySelectorAll(".bdv-focused")) node.classList.remove("bdv-focused");
    if (activeField) for (const node of evidenceOf(activeField)) node.classList.add("bdv-focused");
    for (const row of fieldList.querySelectorAll(".bdv-field")) {
      row.classList.toggle("bdv-active", row.dataset.field === activeField);
    }
  }

  // Scrolls to the field's evidence and flashes it; false while its page is still drawn.
  function flash(name) {
    const page = model.get("pages")[model.get("page") - 1];
    if (page?.has_image && !model.get("image").url) return false;
    const targets = evidenceOf(name);
    if (!targets.length) return false;
    activeField = name;
    markActive();
    targets[0].scrollIntoView({ block: "center", behavior: "smooth" });
    for (const target of targets) {
      target.classList.remove("bdv-flash");
      void target.offsetWidth; // restart the animation
      target.classList.add("bdv-flash");
      setTimeout(() => target.classList.remove("bdv-flash"), FLASH_MS);
    }
    return true;
  }

  function jumpTo(field) {
    if (!field.evidence) return;
    pendingFocus = field.name;
    // Evidence without a box on the image is shown in the page text, opened for it.
    const details = textBox.querySelector("details");
    if (details && !field.evidence.boxes.length) details.open = true;
    if (field.evidence.page !== model.get("page")) setPage(field.evidence.page);
    else if (flash(field.name)) pendingFocus = null;
  }

  function drawHeader() {
    const doc = model.get("document");
    header.replaceChildren();
    if (!doc.file_name) {
      header.append(h("span", { class: "bdv-title" }, model.get("loading") ? "Reading…" : ""));
      return;
    }
    const reviewed = Boolean(doc.reviewed);
    const parts = [
      h("span", { class: "bdv-title", title: `document ${doc.document_id}` }, doc.file_name),
      h("span", { class: `bdv-badge bdv-status-${doc.status}` }, doc.status),
      h("span", { class: "bdv-facts" }, `${doc.file_type} · ${doc.page_count} page${doc.page_count === 1 ? "" : "s"}`),
      reviewed ? h("span", { class: "bdv-badge bdv-reviewed", "data-testid": "reviewed-mark" }, "✓ reviewed") : null,
      h("span", { class: "bdv-spacer" }),
      doc.status === "completed"
        ? h(
            "button",
            {
              class: "bdv-review-button",
              onclick: () => send({ type: "review", reviewed: !reviewed }),
            },
            reviewed ? "Unmark reviewed" : "Mark reviewed",
          )
        : null,
    ];
    header.append(...parts.filter(Boolean));
    const notes = [];
    if (doc.error) notes.push(h("div", { class: "bdv-error" }, doc.error));
    if (doc.problem) notes.push(h("div", { class: "bdv-note" }, doc.problem));
    for (const flag of doc.flags || []) notes.push(h("div", { class: "bdv-flag" }, `⚑ ${flag}`));
    if (notes.length) header.append(h("div", { class: "bdv-notes" }, notes));
  }

  function drawMessage() {
    message.textContent = model.get("message");
  }

  function valueCell(path, text, edit, corrected, original, extraClass = "") {
    const errors = model.get("edit_errors");
    if (editing === path) {
      return h(
        "span",
        { class: "bdv-value-edit" },
        editor(
          edit,
          (value) => {
            editing = null;
            send({ type: "edit", path, value });
            drawFields();
          },
          () => {
            editing = null;
            drawFields();
          },
        ),
      );
    }
    const classes = ["bdv-value", extraClass, corrected ? "bdv-corrected" : "", text ? "" : "bdv-empty"];
    return h(
      "span",
      { class: "bdv-value-wrap" },
      h(
        "span",
        {
          class: classes.join(" ").trim(),
          title: corrected ? `corrected; extracted: ${original || "nothing"}` : undefined,
          "data-path": path,
        },
        text || "not found",
      ),
      h(
        "button",
        {
          class: "bdv-edit",
          title: "correct this value",
          "aria-label": `correct ${path}`,
          "data-path": path,
          onclick: (event) => {
            event.stopPropagation();
            editing = path;
            drawFields();
          },
        },
        "✎",
      ),
      errors[path] ? h("div", { class: "bdv-edit-error", "data-testid": "edit-error" }, errors[path]) : null,
    );
  }

  function drawFields() {
    const fields = model.get("fields");
    fieldList.replaceChildren();
    if (!fields.length) {
      fieldList.append(
        h("div", { class: "bdv-note" }, model.get("loading") ? "Reading the document…" : "No values were extracted."),
      );
      return;
    }
    for (const field of fields) {
      const chips = [];
      if (field.confidence) {
        chips.push(h("span", { class: `bdv-chip ${field.low ? "bdv-low" : ""}`, title: "confidence" }, field.confidence));
      }
      if (field.found && !field.evidence) {
        chips.push(h("span", { class: "bdv-chip bdv-no-evidence" }, "no evidence"));
      } else if (field.evidence) {
        chips.push(h("span", { class: "bdv-chip bdv-where" }, `p. ${field.evidence.page}`));
      }
      if (field.corrected) chips.push(h("span", { class: "bdv-chip bdv-corrected-chip" }, "corrected"));
      const row = h(
        "div",
        {
          class: `bdv-field ${field.evidence ? "bdv-clickable" : ""} ${field.low ? "bdv-field-low" : ""}`,
          "data-field": field.name,
          "data-testid": "document-field",
          title: field.evidence ? "show where it was found" : undefined,
          onclick: () => jumpTo(field),
        },
        h("div", { class: "bdv-field-head" }, h("span", { class: "bdv-label" }, field.label), h("span", { class: "bdv-chips" }, chips)),
      );
      if (field.type === "array" && field.items.length) {
        const table = h(
          "table",
          { class: "bdv-items" },
          h("thead", {}, h("tr", {}, field.columns.map((c) => h("th", {}, c.label)))),
          h(
            "tbody",
            {},
            field.items.map((item) =>
              h(
                "tr",
                {},
                field.columns.map((c) => {
                  const cell = item[c.name];
                  return h("td", {}, valueCell(cell.path, cell.text, cell.edit, cell.corrected, cell.original));
                }),
              ),
            ),
          ),
        );
        row.append(h("div", { class: "bdv-items-wrap" }, table));
      } else {
        row.append(valueCell(field.name, field.text, field.edit, field.corrected, field.original, field.low ? "bdv-low-value" : ""));
      }
      for (const flag of field.flags) row.append(h("div", { class: "bdv-flag" }, `⚑ ${flag}`));
      fieldList.append(row);
    }
    markActive();
  }

  function drawNav() {
    const count = model.get("pages").length;
    const page = model.get("page");
    nav.replaceChildren();
    if (!count) return;
    nav.append(
      h("button", { class: "bdv-prev", disabled: page <= 1, onclick: () => setPage(page - 1), "aria-label": "previous page" }, "‹ Prev"),
      h("span", { class: "bdv-page-number", "data-testid": "page-number" }, `Page ${page} of ${count}`),
      h("button", { class: "bdv-next", disabled: page >= count, onclick: () => setPage(page + 1), "aria-label": "next page" }, "Next ›"),
    );
  }

  function drawImage() {
    const pages = model.get("pages");
    const page = pages[model.get("page") - 1];
    const image = model.get("image");
    imageBox.replaceChildren();
    imageBox.hidden = !page || !page.has_image;
    if (imageBox.hidden) return;
    if (!image.url) {
      imageBox.append(h("div", { class: "bdv-note bdv-drawing" }, "Drawing the page…"));
      return;
    }
    const sheet = h("div", { class: "bdv-sheet" });
    sheet.append(h("img", { src: image.url, alt: `page ${page.number}`, "data-testid": "page-image" }));
    for (const field of model.get("fields")) {
      const evidence = field.evidence;
      if (!evidence || evidence.page !== page.number) continue;
      for (const [x0, y0, x1, y1] of evidence.boxes) {
        const pad = 0.003;
        sheet.append(
          h("div", {
            class: `bdv-box ${field.low ? "bdv-box-low" : ""}`,
            "data-field": field.name,
            title: `${field.label}: ${field.text}`,
            style: `left:${(x0 - pad) * 100}%;top:${(y0 - pad) * 100}%;width:${(x1 - x0 + 2 * pad) * 100}%;height:${(y1 - y0 + 2 * pad) * 100}%`,
            onclick: () => jumpTo(field),
          }),
        );
      }
    }
    imageBox.append(sheet);
  }

  function drawText() {
    const pages = model.get("pages");
    const page = pages[model.get("page") - 1];
    textBox.replaceChildren();
    if (!page) return;
    const body = h("div", { class: "bdv-text-body" });
    body.innerHTML = page.html; // escaped by Python (batchnb.services.preview_result.marked_text)
    for (const mark of body.querySelectorAll("mark[data-field]")) {
      mark.removeAttribute("style");
      mark.classList.add("bdv-mark");
    }
    if (page.has_image) {
      textBox.append(h("details", { class: "bdv-text-details" }, h("summary", {}, "Page text"), body));
    } else {
      textBox.append(body);
    }
  }

  function drawPage() {
    drawNav();
    drawImage();
    drawText();
    markActive();
    if (pendingFocus && flash(pendingFocus)) pendingFocus = null;
  }

  function onFocus() {
    const focus = model.get("focus");
    if (!focus.name || focus.count === lastFocus) return;
    lastFocus = focus.count;
    const field = model.get("fields").find((f) => f.name === focus.name);
    if (field) jumpTo(field);
  }

  function drawAll() {
    drawHeader();
    drawMessage();
    drawFields();
    drawPage();
  }

  const listeners = [
    ["change:document", drawHeader],
    ["change:loading", drawAll],
    ["change:message", drawMessage],
    ["change:fields", () => { drawFields(); drawPage(); }],
    ["change:edit_errors", drawFields],
    ["change:pages", drawPage],
    ["change:page", drawPage],
    ["change:image", drawPage],
    ["change:focus", onFocus],
  ];
  for (const [event, listener] of listeners) model.on(event, listener);
  drawAll();
  onFocus();
  return () => {
    for (const [event, listener] of listeners) model.off(event, listener);
  };
}

export default { render };
