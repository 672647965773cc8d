"""``Dropzone``: drop or pick many files in the browser; they arrive in chunks, resumably.

The browser checks each file against the plan before any byte moves, then sends it in chunks
over the widget's comm (``widgets/dropzone.js``). The kernel writes them to a partial file
(:mod:`batchnb.documents.uploads`), checks the first bytes, verifies the sha256 at the end and
lists the file as ``"verified"``. Verified files are plain paths (:attr:`Dropzone.ready_paths`)
for :func:`batchnb.submit`, which runs the same intake as for any other file.

Messages from the browser (``content["type"]``; chunks carry their bytes in ``buffers[0]``):

``add`` ``{files: [{id, name, size, last_modified, reason?}]}``
    New rows; ``reason`` is a refusal the browser already made.
``begin`` ``{id, epoch, view}``
    Start or resume (``view`` is a random token of the browser view sending); answered by
    ``resume {id, offset, epoch}`` (``offset`` = bytes already on disk), ``verified {id}``,
    ``busy {id, reason, retry_after}`` (another session receives it: ask again later),
    ``refused {id, reason}`` or ``failed {id, reason}``.
``chunk`` ``{id, offset, epoch, view}`` + bytes
    Answered by ``ack {id, offset, epoch}`` (the new end), ``wrong_offset {id, offset,
    epoch}`` (where the partial really ends), ``refused`` or ``failed``.
``finish`` ``{id, sha256, epoch}``
    Answered by ``verified``, ``failed`` (hash mismatch) or ``refused``.
``pause`` ``{id, view}``
    The page is closing (best effort): the file is let go at once, its partial kept.
``fail`` ``{id, reason}``
    The browser cannot go on (the file became unreadable); the partial is kept.
``cancel`` ``{id}``, ``cancel_all``, ``retry`` ``{id}``, ``remove`` ``{id}``, ``clear``
    Change the list (a cancelled partial is deleted); ``cancel`` is answered by
    ``cancelled {id}``.
``add_paths`` ``{pattern}``
    The server-side picker; answered by ``picked {added, refused}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from batchnb.documents.filetypes import DOCUMENT_EXTENSIONS, EMPTY, detect_stream_type
from batchnb.documents.intake import safe_file_name, type_refusal
from batchnb.documents.picking import expand_under
from batchnb.documents.plans import MIB
from batchnb.documents.previews import preview
from batchnb.documents.uploads import (
    CompletedUpload,
    OffsetMismatchError,
    Upload,
    UploadArea,
    UploadBusyError,
    UploadError,
    extension_refusal,
    selection_refusal,
    upload_key,
)
from batchnb.services.workspace import Workspace, default_workspace
from batchnb.ui.assets import asset

STATUSES = ("queued", "uploading", "verified", "refused", "failed", "cancelled")
#: A receiving session with no chunk for this long lets go of its file (the page is gone).
IDLE_RELEASE_SECONDS = 30.0
#: How long the browser waits before asking again for a file another session is receiving.
BUSY_RETRY_SECONDS = 5.0
_PROGRESS_SYNC_SECONDS = 1.0
_COUNTED = frozenset({"queued", "uploading", "verified"})


class Dropzone(anywidget.AnyWidget):
    """Drag-and-drop (or pick) files for a batch; shows each file's check, progress and result.

    Parameters
    ----------
    workspace:
        Where uploads are kept (``<home>/uploads``) and whose plan limits the selection;
        ``None`` is :func:`batchnb.default_workspace`.

    Examples
    --------
    >>> dz = Dropzone()  # doctest: +SKIP
    >>> dz  # drop files, then  # doctest: +SKIP
    >>> batchnb.submit(dz.ready_paths, prompt="invoice number, total")  # doctest: +SKIP
    """

    _esm = asset("dropzone.js")
    _css = asset("dropzone.css")

    #: One dict per file: id, name, size, type, pages, status, reason, sent, thumbnail.
    files = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: Extensions the browser lets through (``.pdf``, ...); a name without one is allowed.
    accept = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: The plan's limits: name, max_files, max_file_bytes, max_batch_bytes.
    plan = traitlets.Dict().tag(sync=True)
    chunk_bytes = traitlets.Int(8 * MIB).tag(sync=True)
    window = traitlets.Int(3).tag(sync=True)

    def __init__(self, workspace: Workspace | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._workspace = workspace or default_workspace()
        self._area = UploadArea.for_settings(self._workspace.settings)
        self._plan = self._workspace.plan
        self.accept = list(DOCUMENT_EXTENSIONS)
        self.plan = {
            "name": self._plan.name,
            "max_files": self._plan.max_files,
            "max_file_bytes": self._plan.max_file_bytes,
            "max_batch_bytes": self._plan.max_batch_bytes,
        }
        self._uploads: dict[str, Upload] = {}
        self._views: dict[str, Any] = {}  # which browser view sends each file
        self._paths: dict[str, Path] = {}
        self._last_progress_sync = 0.0
        self._finalizer = weakref.finalize(self, _release_all, self._uploads)
        self.on_msg(self._handle_message)
        self._schedule_idle_check()

    def __repr__(self) -> str:
        counts = {s: sum(f["status"] == s for f in self.files) for s in STATUSES}
        shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        return f"Dropzone({len(self.files)} files{': ' + shown if shown else ''})"

    # -- public API -------------------------------------------------------------------------

    @property
    def ready_paths(self) -> list[Path]:
        """Local paths of the verified files, in list order (for :func:`batchnb.submit`)."""
        return [
            self._paths[f["id"]]
            for f in self.files
            if f["status"] == "verified" and f["id"] in self._paths
        ]

    def add_paths(self, pattern: str) -> list[str]:
        """Add files already on the kernel's machine: a path, folder or glob under the
        notebook's working folder. They are listed as verified (nothing is copied).

        Returns the refusal messages (``"name: reason"``), empty when every file was added.
        """
        found, refused = expand_under(pattern, Path.cwd())
        for path in found:
            reason = self._add_local_file(path)
            if reason:
                refused.append(f"{safe_file_name(path.name)}: {reason}")
        return refused

    def remove(self, file_id: str) -> None:
        """Take a file off the list; a partial upload of it is deleted."""
        upload = self._uploads.pop(file_id, None)
        if upload is not None:
            upload.cancel()
        self._paths.pop(file_id, None)
        self.files = [f for f in self.files if f["id"] != file_id]

    def clear(self) -> None:
        """Empty the list, deleting partial uploads in progress."""
        for file_id in [f["id"] for f in self.files]:
            self.remove(file_id)

    def close(self) -> None:
        """Let go of files being received (their partials stay, to be resumed) and close."""
        _release_all(self._uploads)
        super().close()

    # -- messages from the browser ----------------------------------------------------------

    def _handle_message(self, _widget: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        self._release_idle()
        kind = content.get("type")
        file_id = str(content.get("id", ""))
        if kind == "chunk":
            self._receive_chunk(file_id, content, buffers)
        elif kind == "begin":
            self._begin(file_id, content)
        elif kind == "finish":
            self._finish(file_id, str(content.get("sha256", "")), content.get("epoch"))
        elif kind == "add":
            self._add_browser_files(content.get("files") or [])
        elif kind == "cancel":
            self._cancel(file_id)
        elif kind == "cancel_all":
            for row in self.files:
                if row["status"] in ("queued", "uploading"):
                    self._cancel(row["id"])
        elif kind == "pause":
            self._pause(file_id, content.get("view"))
        elif kind == "fail":
            self._stop(file_id, str(content.get("reason", "the browser stopped sending")))
        elif kind == "retry":
            self._retry(file_id)
        elif kind == "remove":
            self.remove(file_id)
        elif kind == "clear":
            self.clear()
        elif kind == "add_paths":
            before = {f["id"] for f in self.files}
            refused = self.add_paths(str(content.get("pattern", "")))
            added = [f["name"] for f in self.files if f["id"] not in before]
            self.send({"type": "picked", "added": added, "refused": refused})

    def _add_browser_files(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            name, size = str(entry.get("name", "")), int(entry.get("size", 0))
            file_id = upload_key(name, size, int(entry.get("last_modified", 0)))
            existing = self._row(file_id)
            if existing is not None:
                if existing["status"] in ("failed", "cancelled"):
                    self._retry(file_id)
                continue
            row = _row(file_id, safe_file_name(name), size)
            if str(entry.get("id", file_id)) != file_id:
                row.update(status="refused", reason="the browser sent a wrong key for this file")
            else:
                reason = entry.get("reason") or self._selection_refusal(row["name"], size)
                if reason:
                    row.update(status="refused", reason=str(reason))
            self.files = [*self.files, row]
            if row["status"] == "queued":
                completed = self._area.completed(file_id)
                if completed is not None:  # chosen again after it was verified: no re-upload
                    self._verified(file_id, completed)

    def _begin(self, file_id: str, content: dict[str, Any]) -> None:
        epoch, view = content.get("epoch"), content.get("view")
        row = self._row(file_id)
        if row is None or row["status"] not in ("queued", "uploading"):
            status = "cancelled" if row is None else row["status"]
            self.send({"type": status, "id": file_id, "reason": "not waiting to be sent"})
            return
        upload = self._uploads.get(file_id)
        if upload is not None and self._views.get(file_id, view) != view:
            self._busy(file_id, f"{row['name']} is being uploaded from another view of this widget")
            return
        if upload is None:
            completed = self._area.completed(file_id)
            if completed is not None:
                self._verified(file_id, completed)
                return
            try:
                upload = self._area.begin(file_id, row["name"], row["size"])
            except UploadBusyError as exc:
                self._busy(file_id, str(exc))
                return
            except UploadError as exc:
                self._fail(file_id, exc)
                return
            self._uploads[file_id] = upload
        self._views[file_id] = view
        self._update(file_id, status="uploading", reason="", sent=upload.offset)
        self.send({"type": "resume", "id": file_id, "offset": upload.offset, "epoch": epoch})

    def _receive_chunk(self, file_id: str, content: dict[str, Any], buffers: list[Any]) -> None:
        offset, epoch = int(content["offset"]), content.get("epoch")
        upload = self._uploads.get(file_id)
        if upload is None or self._views.get(file_id) != content.get("view"):
            # Let go while idle, or sent by another view: begin tells where to continue.
            self._begin(file_id, content)
            return
        try:
            end = upload.append(offset, buffers[0] if buffers else b"")
        except OffsetMismatchError as exc:
            self._send_wrong_offset(file_id, exc, epoch)
            return
        except UploadError as exc:
            self._fail(file_id, exc)
            return
        self.send({"type": "ack", "id": file_id, "offset": end, "epoch": epoch})
        now = time.monotonic()
        if now - self._last_progress_sync >= _PROGRESS_SYNC_SECONDS:
            self._last_progress_sync = now
            self._update(file_id, sent=end, type=_kind(upload))

    def _finish(self, file_id: str, sha256: str, epoch: Any) -> None:
        upload = self._uploads.get(file_id)
        if upload is None:
            self._stop(file_id, "the kernel was no longer receiving it; choose the file again")
            return
        try:
            completed = upload.finish(sha256)
        except OffsetMismatchError as exc:
            self._send_wrong_offset(file_id, exc, epoch)
            return
        except UploadError as exc:
            self._fail(file_id, exc)
            return
        self._uploads.pop(file_id, None)
        self._verified(file_id, completed)

    def _send_wrong_offset(self, file_id: str, exc: OffsetMismatchError, epoch: object) -> None:
        """Tell the browser where the partial file really ends, so it sends from there."""
        self.send({"type": "wrong_offset", "id": file_id, "offset": exc.expected, "epoch": epoch})

    def _cancel(self, file_id: str) -> None:
        upload = self._uploads.pop(file_id, None)
        if upload is not None:
            upload.cancel()
        row = self._row(file_id)
        if row is not None and row["status"] in ("queued", "uploading", "failed"):
            self._update(file_id, status="cancelled", reason="cancelled", sent=0)
            self.send({"type": "cancelled", "id": file_id})

    def _stop(self, file_id: str, reason: str) -> None:
        """The upload cannot go on now; its partial stays so that it can be resumed."""
        upload = self._uploads.pop(file_id, None)
        if upload is not None:
            upload.release()
        row = self._row(file_id)
        if row is not None and row["status"] in ("queued", "uploading"):
            self._update(file_id, status="failed", reason=reason)
        self.send({"type": "failed", "id": file_id, "reason": reason})

    def _pause(self, file_id: str, view: Any) -> None:
        """The sending page is closing: let go at once, so that another page can resume."""
        upload = self._uploads.get(file_id)
        if upload is None or self._views.get(file_id) != view:
            return
        kept = upload.offset
        upload.release()
        del self._uploads[file_id]
        self._update(
            file_id,
            status="queued",
            reason="paused: the page sending it closed; choose the file again to continue",
            sent=kept,
        )

    def _retry(self, file_id: str) -> None:
        row = self._row(file_id)
        if row is None or row["status"] not in ("failed", "cancelled"):
            return
        others = [f for f in self.files if f["id"] != file_id]
        reason = self._selection_refusal(row["name"], row["size"], others)
        if reason:
            self._update(file_id, status="refused", reason=reason)
        else:
            self._update(file_id, status="queued", reason="", sent=0)

    # -- rows ------------------------------------------------------------------------------

    def _verified(self, file_id: str, completed: CompletedUpload) -> None:
        digest = completed.sha256 or _file_sha256(completed.path)
        shown = preview(completed.path, completed.file_type.kind, digest, self._area.thumbnail_dir)
        self._paths[file_id] = completed.path
        self._update(
            file_id,
            status="verified",
            reason="",
            sent=completed.size,
            type=completed.file_type.kind,
            pages=shown.pages,
            thumbnail=shown.thumbnail,
        )
        self.send({"type": "verified", "id": file_id})

    def _busy(self, file_id: str, reason: str) -> None:
        """Another session is receiving the file: the browser asks again a little later."""
        self._update(file_id, status="queued", reason=reason)
        self.send(
            {"type": "busy", "id": file_id, "reason": reason, "retry_after": BUSY_RETRY_SECONDS}
        )

    def _fail(self, file_id: str, error: UploadError) -> None:
        self._uploads.pop(file_id, None)
        self._update(file_id, status=error.status, reason=str(error))
        self.send({"type": error.status, "id": file_id, "reason": str(error)})

    def _add_local_file(self, path: Path) -> str | None:
        """List a file from the server-side picker as verified; returns why it was refused."""
        name = safe_file_name(path.name)
        try:
            info = path.stat()
            with path.open("rb") as handle:
                file_type = detect_stream_type(handle, name) if info.st_size else EMPTY
        except OSError as exc:
            return f"cannot be read: {exc.strerror or exc}"
        size = info.st_size
        file_id = upload_key(str(path), size, int(info.st_mtime))
        if self._row(file_id) is not None:
            return "already in the list"
        reason = type_refusal(name, size, file_type) or self._selection_refusal(name, size)
        if reason:
            return reason
        self.files = [*self.files, _row(file_id, name, size)]
        self._verified(file_id, CompletedUpload(file_id, path, size, None, file_type))
        return None

    def _selection_refusal(
        self, name: str, size: int, rows: list[dict[str, Any]] | None = None
    ) -> str | None:
        rows = self.files if rows is None else rows
        counted = [f for f in rows if f["status"] in _COUNTED]
        for other in counted:
            if other["name"] == name and other["size"] == size:
                return f"already in the list (same name and size as {other['name']})"
        return extension_refusal(name) or selection_refusal(
            self._plan, size, len(counted), sum(f["size"] for f in counted)
        )

    def _row(self, file_id: str) -> dict[str, Any] | None:
        return next((f for f in self.files if f["id"] == file_id), None)

    def _update(self, file_id: str, **changes: Any) -> None:
        self.files = [{**f, **changes} if f["id"] == file_id else f for f in self.files]

    # -- sessions left by a closed page ------------------------------------------------------

    def _release_idle(self) -> None:
        now = time.monotonic()
        for file_id, upload in list(self._uploads.items()):
            if now - upload.last_activity > IDLE_RELEASE_SECONDS:
                upload.release()
                del self._uploads[file_id]
                self._update(
                    file_id,
                    status="queued",
                    reason=f"paused: no data for {IDLE_RELEASE_SECONDS:.0f} s; choose the file "
                    "again to continue where it stopped",
                )

    def _schedule_idle_check(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script or a test): checked on each message
            return
        widget = weakref.ref(self)

        def check() -> None:
            alive = widget()
            if alive is not None and alive.comm is not None:
                alive._release_idle()
                loop.call_later(BUSY_RETRY_SECONDS, check)

        loop.call_later(BUSY_RETRY_SECONDS, check)


def _row(file_id: str, name: str, size: int) -> dict[str, Any]:
    return {
        "id": file_id,
        "name": name,
        "size": size,
        "type": "",
        "pages": None,
        "status": "queued",
        "reason": "",
        "sent": 0,
        "thumbnail": "",
    }


def _kind(upload: Upload) -> str:
    return upload.file_type.kind if upload.file_type else ""


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def _release_all(uploads: dict[str, Upload]) -> None:
    for upload in uploads.values():
        upload.release()
    uploads.clear()
