// batchnb Dropzone: drag-and-drop or pick files; they go to the kernel in chunks, resumably.
// The kernel decides (batchnb/ui/dropzone.py has the message protocol); this module renders
// the list from the synced `files`, checks a selection before any byte moves, and streams
// chunks with a small window of acknowledgements. No build step, no network.

// ---- SHA-256, incremental and in plain JS: crypto.subtle has no incremental mode and is
// missing on plain-http pages that are not localhost.
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export class Sha256 {
  constructor() {
    this.h = new Uint32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    this.w = new Uint32Array(64);
    this.tail = new Uint8Array(64);
    this.tailLength = 0;
    this.length = 0;
  }

  update(data) {
    let i = 0;
    const n = data.length;
    this.length += n;
    if (this.tailLength) {
      const take = Math.min(64 - this.tailLength, n);
      this.tail.set(data.subarray(0, take), this.tailLength);
      this.tailLength += take;
      i = take;
      if (this.tailLength < 64) return this;
      this.block(this.tail, 0);
      this.tailLength = 0;
    }
    for (; i + 64 <= n; i += 64) this.block(data, i);
    if (i < n) {
      this.tail.set(data.subarray(i), 0);
      this.tailLength = n - i;
    }
    return this;
  }

  block(d, p) {
    const w = this.w;
    for (let t = 0; t < 16; t++, p += 4) {
      w[t] = (d[p] << 24) | (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3];
    }
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15];
      const y = w[t - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
    }
    const h = this.h;
    let a = h[0], b = h[1], c = h[2], e = h[4], f = h[5], g = h[6], k = h[7], dd = h[3];
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g; g = f; f = e; e = (dd + t1) | 0; dd = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += dd; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
  }

  hex() {
    const length = this.length;
    const pad = new Uint8Array(((this.tailLength + 8) >> 6) * 64 + 64 - this.tailLength);
    pad[0] = 0x80;
    const view = new DataView(pad.buffer);
    view.setUint32(pad.length - 8, Math.floor(length / 0x20000000));
    view.setUint32(pad.length - 4, (length % 0x20000000) * 8);
    this.update(pad);
    return Array.from(this.h, (x) => x.toString(16).padStart(8, "0")).join("");
  }
}

// The kernel's batchnb.documents.uploads.upload_key, computed the same way.
export function fileKey(file) {
  const text = `${file.name}\0${file.size}\0${file.lastModified}`;
  return new Sha256().update(new TextEncoder().encode(text)).hex().slice(0, 32);
}

// ---- formatting, worded like the kernel's refusal messages
const KIB = 1024, MIB = 1024 * KIB, GIB = 1024 * MIB;
function formatSize(n) {
  if (n >= GIB) return `${(n / GIB).toFixed(1)} GiB`;
  if (n >= MIB) return `${(n / MIB).toFixed(1)} MiB`;
  if (n >= KIB) return `${(n / KIB).toFixed(1)} KiB`;
  return `${n} bytes`;
}
function compareSizes(size, limit, plan) {
  let shown = formatSize(size), allowed = formatSize(limit);
  if (shown === allowed) [shown, allowed] = [`${size} bytes`, `${limit} bytes`];
  return `${shown}, plan '${plan}' allows ${allowed}`;
}
function formatDuration(seconds) {
  if (!isFinite(seconds)) return "–";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}
const COUNTED = new Set(["queued", "uploading", "verified"]);
const RESUMABLE = new Set(["queued", "uploading", "failed", "cancelled"]);

// Why each file of a selection is refused before any byte moves ("" when it may go).
function checkSelection(chosen, rows, accept, plan) {
  const counted = rows.filter((r) => COUNTED.has(r.status));
  const seen = new Set(counted.map((r) => `${r.name}\0${r.size}`));
  let files = counted.length;
  let bytes = counted.reduce((sum, r) => sum + r.size, 0);
  return chosen.map((file) => {
    const dot = file.name.lastIndexOf(".");
    const extension = dot > 0 ? file.name.slice(dot).toLowerCase() : "";
    const same = `${file.name}\0${file.size}`;
    let reason = "";
    if (seen.has(same)) reason = "already in the list (same name and size)";
    else if (file.size === 0) reason = "empty file (0 bytes)";
    else if (extension && !accept.includes(extension)) {
      reason = `${extension} files are not accepted (accepted: ${accept.join(", ")})`;
    } else if (plan.max_files === 0) reason = `batches are not part of the ${plan.name} plan`;
    else if (file.size > plan.max_file_bytes) {
      reason = `too large: ${compareSizes(file.size, plan.max_file_bytes, plan.name)}`;
    } else if (files >= plan.max_files) {
      reason = `over the plan's limit of ${plan.max_files.toLocaleString("en")} files (plan '${plan.name}')`;
    } else if (bytes + file.size > plan.max_batch_bytes) {
      reason = `over the plan's batch size: ${compareSizes(bytes + file.size, plan.max_batch_bytes, plan.name)} per batch`;
    }
    seen.add(same);
    if (!reason) {
      files += 1;
      bytes += file.size;
    }
    return reason;
  });
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function render({ model, el }) {
  const held = new Map(); // id -> upload state of a File this view holds
  const view = Math.random().toString(36).slice(2); // tells this view's messages apart
  let current = null; // the id being sent (one file at a time, a window of chunks)
  let throttle = null;

  // ---- layout
  const root = element("div", { class: "batchnb-dropzone", "data-testid": "dropzone" });
  const area = element("div", { class: "bnd-area", "data-testid": "drop-area", tabindex: "0" });
  const input = element("input", {
    type: "file", multiple: "", class: "bnd-input", "data-testid": "file-input",
  });
  const choose = element("button", { type: "button", "data-testid": "choose-files" }, "Choose files");
  const limits = element("div", { class: "bnd-limits", "data-testid": "plan-limits" });
  area.append(element("span", {}, "Drop files here or "), choose, input, limits);

  const picker = element("div", { class: "bnd-picker", "data-testid": "picker" });
  const pattern = element("input", {
    type: "text", placeholder: "or add files from the notebook's folder: invoices/*.pdf",
    "data-testid": "picker-input",
  });
  const add = element("button", { type: "button", "data-testid": "picker-add" }, "Add");
  const pickerMessage = element("div", { class: "bnd-picker-message", "data-testid": "picker-message" });
  picker.append(pattern, add, pickerMessage);

  const overall = element("div", { class: "bnd-overall", "data-testid": "overall-progress" });
  const overallBar = element("progress", { max: "1", value: "0" });
  const overallText = element("span", { "data-testid": "overall-text" });
  const cancelAll = element("button", { type: "button", "data-testid": "cancel-all" }, "Cancel all");
  const clear = element("button", { type: "button", "data-testid": "clear" }, "Clear");
  overall.append(overallBar, overallText, cancelAll, clear);
  const list = element("ul", { class: "bnd-list", "data-testid": "file-list" });
  root.append(area, picker, overall, list);
  el.append(root);

  // ---- choosing files
  const accept = () => model.get("accept") || [];
  function choose_(fileList) {
    const rows = model.get("files") || [];
    const listed = new Map(rows.map((row) => [row.id, row]));
    const entries = [];
    const fresh = [];
    for (const file of Array.from(fileList || [])) {
      const id = fileKey(file);
      const row = listed.get(id);
      const entry = { id, name: file.name, size: file.size, last_modified: file.lastModified };
      if (!row) {
        fresh.push([file, entry]);
      } else if (RESUMABLE.has(row.status) && !(held.get(id) && held.get(id).state !== "idle")) {
        // Listed already but not being sent from here (a reload, a failure): take it up again.
        held.set(id, { file, epoch: 0, state: "idle" });
        entries.push(entry);
      }
    }
    const reasons = checkSelection(fresh.map(([file]) => file), rows, accept(), model.get("plan") || {});
    fresh.forEach(([file, entry], index) => {
      if (!reasons[index]) held.set(entry.id, { file, epoch: 0, state: "idle" });
      entries.push({ ...entry, reason: reasons[index] });
    });
    if (entries.length) model.send({ type: "add", files: entries });
    next();
  }
  choose.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    choose_(input.files);
    input.value = "";
  });
  area.addEventListener("dragover", (event) => {
    event.preventDefault();
    area.classList.add("bnd-over");
  });
  area.addEventListener("dragleave", () => area.classList.remove("bnd-over"));
  area.addEventListener("drop", (event) => {
    event.preventDefault();
    area.classList.remove("bnd-over");
    choose_(event.dataTransfer && event.dataTransfer.files);
  });
  const pick = () => {
    if (!pattern.value.trim()) return;
    pickerMessage.textContent = "adding…";
    model.send({ type: "add_paths", pattern: pattern.value });
  };
  add.addEventListener("click", pick);
  pattern.addEventListener("keydown", (event) => {
    if (event.key === "Enter") pick();
  });
  cancelAll.addEventListener("click", () => {
    for (const upload of held.values()) stop(upload);
    current = null;
    model.send({ type: "cancel_all" });
  });
  clear.addEventListener("click", () => {
    for (const upload of held.values()) stop(upload);
    current = null;
    held.clear();
    model.send({ type: "clear" });
  });

  // ---- sending: begin -> resume(offset) -> chunks within a window -> finish(sha256)
  function stop(upload) {
    upload.epoch += 1; // replies to what was in flight are ignored from now on
    upload.state = "idle";
  }
  function next() {
    if (current !== null) return;
    const now = performance.now();
    for (const row of model.get("files") || []) {
      const upload = held.get(row.id);
      const waiting = row.status === "queued" || row.status === "uploading";
      if (upload && upload.state === "idle" && waiting && !(upload.notBefore > now)) {
        current = row.id;
        upload.state = "starting";
        upload.epoch += 1;
        model.send({ type: "begin", id: row.id, epoch: upload.epoch, view });
        return;
      }
    }
  }
  async function resync(id, upload, offset) {
    // Hash the prefix the kernel already has, by slices, then go on from there.
    upload.epoch += 1;
    const epoch = upload.epoch;
    upload.state = "hashing";
    upload.hasher = new Sha256();
    const size = model.get("chunk_bytes");
    try {
      for (let at = 0; at < offset; at += size) {
        const buffer = await upload.file.slice(at, Math.min(at + size, offset)).arrayBuffer();
        if (upload.epoch !== epoch) return;
        upload.hasher.update(new Uint8Array(buffer));
      }
    } catch (error) {
      unreadable(id, upload, error);
      return;
    }
    Object.assign(upload, {
      state: "sending", next: offset, acked: offset, inflight: 0,
      started: performance.now(), startOffset: offset,
    });
    pump(id, upload);
  }
  async function pump(id, upload) {
    const epoch = upload.epoch;
    if (upload.reading === epoch) return; // a loop of this epoch is already reading
    upload.reading = epoch;
    const size = upload.file.size;
    try {
      while (upload.epoch === epoch && upload.state === "sending" &&
             upload.inflight < model.get("window") && upload.next < size) {
        const start = upload.next;
        const end = Math.min(start + model.get("chunk_bytes"), size);
        const buffer = await upload.file.slice(start, end).arrayBuffer();
        if (upload.epoch !== epoch) break;
        upload.hasher.update(new Uint8Array(buffer));
        upload.next = end;
        upload.inflight += 1;
        model.send({ type: "chunk", id, offset: start, epoch, view }, undefined, [buffer]);
      }
    } catch (error) {
      unreadable(id, upload, error);
    } finally {
      if (upload.reading === epoch) upload.reading = null;
    }
  }
  function unreadable(id, upload, error) {
    stop(upload);
    current = current === id ? null : current;
    model.send({ type: "fail", id, reason: `the browser cannot read the file any more (${error.name}); choose it again` });
  }
  function onMessage(message) {
    if (!message || typeof message !== "object") return;
    if (message.type === "picked") {
      const lines = [];
      if (message.added.length) lines.push(`added ${message.added.length} file(s)`);
      pickerMessage.textContent = lines.concat(message.refused).join("\n");
      pickerMessage.dataset.refused = String(message.refused.length);
      return;
    }
    const upload = held.get(message.id);
    if (!upload) return;
    const live = message.epoch === undefined || message.epoch === upload.epoch;
    if ((message.type === "resume" || message.type === "wrong_offset") && live) {
      resync(message.id, upload, message.offset);
    } else if (message.type === "ack" && live && upload.state === "sending") {
      upload.inflight -= 1;
      upload.acked = message.offset;
      if (upload.acked >= upload.file.size) {
        upload.state = "finishing";
        model.send({ type: "finish", id: message.id, sha256: upload.hasher.hex(), epoch: upload.epoch });
      } else {
        pump(message.id, upload);
      }
      scheduleProgress();
    } else if (message.type === "busy") {
      // Another page or kernel is receiving this file; ask again later, meanwhile others go.
      stop(upload);
      upload.notBefore = performance.now() + message.retry_after * 1000;
      if (current === message.id) current = null;
      setTimeout(next, message.retry_after * 1000 + 50);
      next();
    } else if (["verified", "refused", "failed", "cancelled"].includes(message.type)) {
      stop(upload);
      upload.acked = undefined;
      if (current === message.id) current = null;
      next();
    }
  }

  // ---- drawing
  function rowBytes(row) {
    const upload = held.get(row.id);
    if (row.status === "verified") return row.size;
    if (upload && upload.acked !== undefined && row.id === current) return upload.acked;
    return row.status === "uploading" ? row.sent : 0;
  }
  function speed(row) {
    const upload = held.get(row.id);
    if (!upload || row.id !== current || upload.started === undefined) return 0;
    const seconds = (performance.now() - upload.started) / 1000;
    return seconds > 0.2 ? (upload.acked - upload.startOffset) / seconds : 0;
  }
  function progressText(done, size, rate) {
    const percent = size ? Math.floor((100 * done) / size) : 0;
    let text = `${(done / MIB).toFixed(1)} of ${(size / MIB).toFixed(1)} MiB · ${percent}%`;
    if (rate > 0) text += ` · ${(rate / MIB).toFixed(1)} MiB/s · ${formatDuration((size - done) / rate)} left`;
    return text;
  }
  function button(label, testid, handler) {
    const node = element("button", { type: "button", "data-testid": testid }, label);
    node.addEventListener("click", handler);
    return node;
  }
  function drawRow(row) {
    const item = element("li", {
      class: `bnd-row bnd-${row.status}`, "data-testid": "file-row", "data-status": row.status,
      "data-file-id": row.id, "data-name": row.name,
    });
    const thumb = element("div", { class: "bnd-thumb" });
    if (row.thumbnail) thumb.append(element("img", { src: row.thumbnail, alt: "", "data-testid": "thumbnail" }));
    const body = element("div", { class: "bnd-body" });
    const facts = [formatSize(row.size), row.type, row.pages ? `${row.pages} page${row.pages === 1 ? "" : "s"}` : ""];
    body.append(
      element("div", { class: "bnd-name" }, row.name),
      element("div", { class: "bnd-facts" }, facts.filter(Boolean).join(" · ")),
      element("div", { class: "bnd-status", "data-testid": "file-status" }, row.status),
      element("div", { class: "bnd-progress", "data-testid": "row-progress" }),
      element("div", { class: "bnd-message", "data-testid": "file-message" }, row.reason || ""),
    );
    const actions = element("div", { class: "bnd-actions" });
    if (row.status === "queued" || row.status === "uploading") {
      actions.append(button("Cancel", "cancel-file", () => {
        const upload = held.get(row.id);
        if (upload) stop(upload);
        if (current === row.id) current = null;
        model.send({ type: "cancel", id: row.id });
      }));
    }
    if (row.status === "failed" || row.status === "cancelled") {
      actions.append(button("Retry", "retry-file", () => {
        if (held.has(row.id)) model.send({ type: "retry", id: row.id });
        else input.click(); // this page does not hold the file: choose it again to resume
      }));
    }
    actions.append(button("Remove", "remove-file", () => {
      const upload = held.get(row.id);
      if (upload) stop(upload);
      if (current === row.id) current = null;
      held.delete(row.id);
      model.send({ type: "remove", id: row.id });
    }));
    item.append(thumb, body, actions);
    return item;
  }
  const drawn = new Map(); // id -> [signature, element]: rows are redrawn only when they change
  function drawList() {
    const rows = model.get("files") || [];
    const keep = new Set();
    rows.forEach((row, index) => {
      const signature = JSON.stringify([row.status, row.reason, row.name, row.size, row.type, row.pages, row.thumbnail.length]);
      let [before, node] = drawn.get(row.id) || [];
      if (before !== signature) {
        const fresh = drawRow(row);
        if (node) node.replaceWith(fresh);
        node = fresh;
        drawn.set(row.id, [signature, node]);
      }
      keep.add(row.id);
      if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
    });
    for (const [id, [, node]] of drawn) {
      if (!keep.has(id)) {
        node.remove();
        drawn.delete(id);
      }
    }
    const plan = model.get("plan") || {};
    limits.textContent = plan.max_files === 0
      ? `Batches are not part of the ${plan.name} plan.`
      : `Plan ${plan.name}: up to ${(plan.max_files || 0).toLocaleString("en")} files, ` +
        `${formatSize(plan.max_file_bytes || 0)} each, ${formatSize(plan.max_batch_bytes || 0)} in all.`;
    input.setAttribute("accept", accept().join(","));
    drawProgress();
  }
  function drawProgress() {
    throttle = null;
    const rows = (model.get("files") || []).filter((row) => COUNTED.has(row.status));
    let done = 0, size = 0, rate = 0;
    for (const row of rows) {
      const bytes = rowBytes(row);
      done += bytes;
      size += row.size;
      rate += speed(row);
      const node = list.querySelector(`[data-file-id="${row.id}"] [data-testid="row-progress"]`);
      if (node) node.textContent = row.status === "verified" ? "" : progressText(bytes, row.size, speed(row));
    }
    overallBar.value = size ? done / size : 0;
    overallText.textContent = rows.length ? progressText(done, size, rate) : "no files yet";
    overall.dataset.percent = String(size ? Math.floor((100 * done) / size) : 0);
  }
  function scheduleProgress() {
    if (throttle === null) throttle = setTimeout(drawProgress, 200);
  }
  function onFiles() {
    drawList();
    next();
  }

  // Closing the page: tell the kernel to let go of the file now (best effort; a kernel that
  // hears nothing lets go after a pause) so that a new page can resume it at once.
  function onHide() {
    if (current === null) return;
    try {
      model.send({ type: "pause", id: current, view });
    } catch (error) {
      // The kernel connection is already gone (Voila closes it before pagehide): the kernel
      // lets go of the file by itself after its idle pause.
    }
  }
  window.addEventListener("pagehide", onHide);
  model.on("msg:custom", onMessage);
  model.on("change:files", onFiles);
  model.on("change:plan", drawList);
  drawList();
  next();
  return () => {
    onHide(); // this view goes (the cell re-ran or the output was cleared): let go as well
    window.removeEventListener("pagehide", onHide);
    model.off("msg:custom", onMessage);
    model.off("change:files", onFiles);
    model.off("change:plan", drawList);
    if (throttle !== null) clearTimeout(throttle);
    for (const upload of held.values()) stop(upload);
  };
}

export default { render };
