"""Sending a file from the kernel to the browser as a download, over a widget's comm.

No server route is involved, so it works the same in JupyterLab, Notebook and Voila (whose
server serves no files of the kernel's). The bytes go in chunks with binary buffers, each
message well under the websocket's limits; the front end joins them into a ``Blob`` and
clicks a ``<a download>`` for it (``widgets/batch_manager.js``, ``saveDownload``).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any, Protocol

CHUNK_BYTES = 1024 * 1024
"""Bytes per message: small next to the comm's limits, few messages for a usual export."""

_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".parquet": "application/vnd.apache.parquet",
}


class Sender(Protocol):
    """A widget that sends custom messages (``ipywidgets.Widget.send``)."""

    def send(self, content: Any, buffers: Any = None) -> None: ...


def media_type(path: Path) -> str:
    """The MIME type a download of ``path`` is labelled with."""
    suffix = path.suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def send_file(
    widget: Sender, path: Path, *, name: str | None = None, chunk_bytes: int = CHUNK_BYTES
) -> int:
    """Send ``path`` to the browser as ``file_begin``, ``file_chunk``... ``file_end``; returns
    the bytes sent. The file is read a chunk at a time (memory stays at one chunk).

    ``name`` is the file name the browser saves under (default: the file's own).
    """
    size = path.stat().st_size
    shown = name or path.name
    widget.send({"type": "file_begin", "name": shown, "size": size, "mime": media_type(path)})
    sent = 0
    index = 0
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            widget.send({"type": "file_chunk", "index": index}, buffers=[chunk])
            sent += len(chunk)
            index += 1
    widget.send({"type": "file_end", "name": shown, "size": sent, "chunks": index})
    return sent
