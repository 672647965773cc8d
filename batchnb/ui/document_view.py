"""``DocumentView``: one document's page with each extracted value's evidence on it.

The page is shown as an image (a PDF page rendered with pypdfium2, an image as itself) with a
box over each value's evidence where its place on the page is known (PDF text layers, OCR'd
pages), and as text with each value's span marked (the marking the prompt editor's preview
uses, :func:`batchnb.services.preview_result.marked_text`). Clicking a field turns to its page
and scrolls to its evidence, which flashes; values with no evidence say so. Each value can be
corrected in place (:func:`batchnb.services.review.correct_value`: refusals and bad values are
shown beside the field) and the document marked reviewed.

Messages from the browser (``widgets/document_view.js``): ``page {page}``, ``edit {path,
value}`` (answered by ``edited {path}`` or ``edit_error {path, message}``), ``review
{reviewed}``. All reading and drawing happens off the kernel's event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from batchnb.errors import BatchnbError
from batchnb.services.document_view import (
    LOW_CONFIDENCE,
    DocumentContent,
    DocumentField,
    document_content,
    document_page_image,
)
from batchnb.services.preview_result import marked_text
from batchnb.services.review import Correction, correct_value, mark_reviewed
from batchnb.services.workspace import Workspace
from batchnb.ui.assets import asset
from batchnb.ui.background import in_background
from batchnb.ui.review_cells import editable_text, error_message, percent, shown

log = logging.getLogger(__name__)


class DocumentView(anywidget.AnyWidget):
    """One document: its page, its values and their evidence; correct values, mark reviewed.

    Parameters
    ----------
    document_id:
        The document to show (``batch.results().document_id``).
    workspace:
        Its workspace; ``None`` is the default workspace.
    actor:
        Who corrects (default: the workspace's user).
    low_confidence:
        Values with a confidence below this are marked.
    """

    _esm = asset("document_view.js")
    _css = asset("document_view.css")

    #: file_name, file_type, status, error, reviewed, problem, flags, page_count
    document = traitlets.Dict().tag(sync=True)
    #: One dict per field: name, label, type, text, edit, confidence, low, evidence, ...
    fields = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: One dict per page: number, html (the text with evidence marked), has_image.
    pages = traitlets.List(traitlets.Dict()).tag(sync=True)
    page = traitlets.Int(1).tag(sync=True)
    #: The current page's image: url, width, height (empty while drawn, or without one).
    image = traitlets.Dict().tag(sync=True)
    #: Field name to jump to, and a counter so that the same field can be asked again.
    focus = traitlets.Dict().tag(sync=True)
    loading = traitlets.Bool(True).tag(sync=True)
    #: The last outcome for the reader ("total corrected", a refusal).
    message = traitlets.Unicode("").tag(sync=True)
    #: Path → why its last edit was refused.
    edit_errors = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        document_id: int,
        *,
        workspace: Workspace | None = None,
        actor: str | None = None,
        low_confidence: float = LOW_CONFIDENCE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.document_id = int(document_id)
        self.workspace = workspace
        self.actor = actor
        self.low_confidence = low_confidence
        self.content: DocumentContent | None = None
        self._changed: list[Callable[[DocumentView], None]] = []
        self._focus_count = 0
        self.on_msg(self._handle_message)
        self.observe(lambda change: self._draw_page(change["new"]), names="page")
        self.reload()

    def __repr__(self) -> str:
        name = self.document.get("file_name", "?")
        return f"DocumentView(document {self.document_id}: {name!r}, page {self.page})"

    # -- public API ----------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the document again (values as corrected, evidence, page texts) and show it."""
        self.loading = True
        in_background(self._read, self._show, self._failed)

    def show_field(self, name: str) -> None:
        """Turn to the page of field ``name``'s evidence and flash it (what a click does)."""
        found = self._field(name)
        if found.evidence is not None and found.evidence.page != self.page:
            self.page = found.evidence.page
        self._focus_count += 1
        self.focus = {"name": name, "count": self._focus_count}

    def correct(self, path: str, value: Any) -> Correction | None:
        """Correct the value at ``path`` (``total``, ``line_items.2.amount``); the refusal or
        the problem with the value is shown beside the field and ``None`` returned."""
        try:
            correction = correct_value(
                self.document_id, path, value, workspace=self.workspace, actor=self.actor
            )
        except Exception as error:
            if not isinstance(error, BatchnbError):  # a bug: the traceback goes to the log
                log.error("correcting %s failed", path, exc_info=error)
            self.edit_errors = {**self.edit_errors, path: error_message(error)}
            self.message = ""
            return None
        self.edit_errors = {k: v for k, v in self.edit_errors.items() if k != path}
        self.message = f"{path} corrected: {shown(correction.old_value) or 'empty'} → " + (
            shown(correction.new_value) or "empty"
        )
        self._show(self._read())
        self._notify()
        return correction

    def set_reviewed(self, reviewed: bool = True) -> bool:
        """Mark the document reviewed (or not); ``False`` and the reason shown when refused."""
        try:
            mark_reviewed(self.document_id, reviewed, workspace=self.workspace, actor=self.actor)
        except Exception as error:
            self.message = error_message(error)
            return False
        self.document = {**self.document, "reviewed": reviewed}
        self.message = "marked reviewed" if reviewed else "no longer marked reviewed"
        self._notify()
        return True

    def on_change(self, callback: Callable[[DocumentView], None]) -> None:
        """Call ``callback(view)`` after each correction or review mark made here."""
        self._changed.append(callback)

    # -- reading and drawing -------------------------------------------------------------------

    def _read(self) -> DocumentContent:
        return document_content(self.document_id, workspace=self.workspace, actor=self.actor)

    def _show(self, content: DocumentContent) -> None:
        self.content = content
        self.document = {
            "document_id": content.document_id,
            "batch_id": content.batch_id,
            "file_name": content.file_name,
            "file_type": content.file_type,
            "status": content.status,
            "error": content.error or "",
            "reviewed": content.reviewed,
            "problem": content.problem or "",
            "flags": [str(flag.get("message", "")) for flag in content.flags],
            "page_count": len(content.pages),
        }
        self.fields = [self._field_state(found) for found in content.fields]
        self.pages = [
            {
                "number": page.number,
                "has_image": page.has_image,
                "html": str(
                    marked_text(
                        page.text,
                        [
                            (f.evidence.start, f.evidence.end, f.name)
                            for f in content.fields
                            if f.evidence is not None
                            and f.evidence.page == page.number
                            and f.evidence.start is not None
                            and f.evidence.end is not None
                        ],
                    )
                ),
            }
            for page in content.pages
        ]
        self.loading = False
        if not 0 < self.page <= len(content.pages):
            self.page = 1
        self._draw_page(self.page)

    def _failed(self, error: Exception) -> None:
        self.loading = False
        self.message = error_message(error)
        if not isinstance(error, BatchnbError):
            log.error("document %s cannot be shown", self.document_id, exc_info=error)

    def _draw_page(self, number: int) -> None:
        pages = self.pages
        if not pages or not 0 < number <= len(pages) or not pages[number - 1]["has_image"]:
            self.image = {}
            return
        self.image = {}

        def draw() -> Any:
            return document_page_image(
                self.document_id, number, workspace=self.workspace, actor=self.actor
            )

        def drawn(found: Any) -> None:
            if found is not None and self.page == number:
                self.image = {"url": found.data_url, "width": found.width, "height": found.height}

        def failed(error: Exception) -> None:
            self.message = f"page {number} cannot be drawn: {error_message(error)}"

        in_background(draw, drawn, failed)

    def _field_state(self, found: DocumentField) -> dict[str, Any]:
        evidence = None
        if found.evidence is not None:
            evidence = {
                "page": found.evidence.page,
                "start": found.evidence.start,
                "end": found.evidence.end,
                "raw": found.evidence.raw or "",
                "boxes": [list(box) for box in found.evidence.boxes],
            }
        items = []
        if found.type == "array" and isinstance(found.value, list):
            for index, item in enumerate(found.value):
                cells = {}
                for spec in found.item_fields:
                    sub = str(spec["name"])
                    path = f"{found.name}.{index}.{sub}"
                    value = item.get(sub) if isinstance(item, dict) else None
                    cells[sub] = {
                        "path": path,
                        "text": shown(value),
                        "edit": editable_text(value),
                        "corrected": path in found.corrected_paths,
                        "original": shown(found.item_originals.get(path)),
                    }
                items.append(cells)
        confidence = found.confidence
        return {
            "name": found.name,
            "label": found.label,
            "type": found.type,
            "text": shown(found.value),
            "edit": editable_text(found.value),
            "found": found.found,
            "confidence": percent(confidence),
            "low": confidence is not None and confidence < self.low_confidence,
            "evidence": evidence,
            "flags": list(found.flags),
            "corrected": found.name in found.corrected_paths,
            "original": shown(found.original),
            "columns": [
                {"name": str(s["name"]), "label": str(s.get("label") or s["name"])}
                for s in found.item_fields
            ],
            "items": items,
        }

    def _field(self, name: str) -> DocumentField:
        if self.content is None:
            raise LookupError(f"document {self.document_id} is not read yet")
        return self.content.field(name)

    def _notify(self) -> None:
        for callback in self._changed:
            callback(self)

    def _handle_message(self, _: Any, content: dict[str, Any], buffers: list[bytes]) -> None:
        kind = content.get("type")
        if kind == "edit":
            self.correct(str(content.get("path", "")), content.get("value"))
        elif kind == "review":
            self.set_reviewed(bool(content.get("reviewed", True)))
        elif kind == "focus":
            self.show_field(str(content.get("name", "")))
