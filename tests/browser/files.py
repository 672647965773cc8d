"""Files to drop in the browser: real PDFs of any size, and their sha256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_BLOCK = 8 * 1024 * 1024


def padded_pdf(path: Path, size: int, text: str = "Invoice INV-0001 Total 100.00") -> Path:
    """Write a valid one-page PDF of exactly ``size`` bytes showing ``text``.

    The bulk is an unreferenced stream of random bytes (incompressible, so no layer can
    shrink it in transit); the cross-reference table is exact, so any PDF reader opens it.
    """
    content = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    head = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(head))
        head += b"%d 0 obj\n%s\nendobj\n" % (number, body)

    def tail(padding_offset: int, padding: int) -> bytes:
        padding_end = padding_offset + len(b"6 0 obj\n<< /Length %d >>\nstream\n" % padding)
        xref_offset = padding_end + padding + len(b"\nendstream\nendobj\n")
        rows = b"".join(b"%010d 00000 n \n" % offset for offset in [*offsets, padding_offset])
        return (
            b"\nendstream\nendobj\nxref\n0 7\n0000000000 65535 f \n"
            + rows
            + b"trailer\n<< /Size 7 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref_offset
        )

    # The padding's length changes the digits written around it: settle it in two passes.
    padding = size - len(head) - 200
    for _ in range(3):
        header = b"6 0 obj\n<< /Length %d >>\nstream\n" % padding
        total = len(head) + len(header) + padding + len(tail(len(head), padding))
        padding += size - total
    if padding < 0:
        raise ValueError(f"a PDF needs at least {size - padding} bytes")
    header = b"6 0 obj\n<< /Length %d >>\nstream\n" % padding
    with path.open("wb") as out:
        out.write(head)
        out.write(header)
        left = padding
        while left:
            block = os.urandom(min(_BLOCK, left))
            out.write(block)
            left -= len(block)
        out.write(tail(len(head), padding))
    if path.stat().st_size != size:
        raise AssertionError(f"{path} is {path.stat().st_size} bytes, not {size}")
    return path


def sha256_of(path: Path) -> str:
    """The file's sha256 as hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
