"""Every document error is raised with one of the documented kinds (analytics count by kind)."""

from __future__ import annotations

import ast
from pathlib import Path

from batchnb.errors import DOCUMENT_ERROR_KINDS, DocumentError

PACKAGE = Path(__file__).resolve().parents[2] / "batchnb"


def _document_error_kinds() -> dict[str, str]:
    """Where each ``DocumentError(..., kind=...)`` is raised, and the kind it gives."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "DocumentError"
            ):
                continue
            given = [k.value for k in node.keywords if k.arg == "kind"]
            kind = given[0].value if given and isinstance(given[0], ast.Constant) else None
            found[f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"] = str(
                kind or DocumentError.kind
            )
    return found


def test_document_errors_use_the_documented_kinds() -> None:
    kinds = _document_error_kinds()
    assert len(kinds) > 20  # the parsers raise them in many places
    assert {where: kind for where, kind in kinds.items() if kind not in DOCUMENT_ERROR_KINDS} == {}
    assert set(kinds.values()) == set(DOCUMENT_ERROR_KINDS)  # and every kind is used
    assert DocumentError("x").permanent and DocumentError("x", kind="empty").kind == "empty"
