"""The server-side picker: files named by a path, folder or glob, kept inside one folder.

A widget lets the user add files that are already on the kernel's machine (no upload) by
typing ``invoices/*.pdf``. Only files under the notebook's folder may be named: a pattern or a
symbolic link that leads outside it is refused, so a shared app cannot be asked for
``../../etc/passwd``.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

_GLOB_CHARS = re.compile(r"[*?[]")


def expand_under(pattern: str, root: Path) -> tuple[list[Path], list[str]]:
    """The files ``pattern`` names under ``root``, and why parts of it were refused.

    Parameters
    ----------
    pattern:
        A file, a folder (its visible files, recursively) or a glob (``**`` recursive),
        relative to ``root`` or absolute inside it; ``~`` is expanded.
    root:
        The folder nothing may escape (symbolic links are resolved before the check).

    Returns
    -------
    tuple
        Resolved file paths in sorted order, without repeats; and refusal messages, each
        starting with the pattern or file concerned.
    """
    pattern = pattern.strip()
    if not pattern:
        return [], ["type a file name, a folder or a pattern such as invoices/*.pdf"]
    root = root.resolve()
    candidate = Path(os.path.expanduser(pattern))
    if not candidate.is_absolute():
        candidate = root / candidate
    if not _inside(Path(os.path.normpath(_static_prefix(candidate))), root):
        return [], [
            f"{pattern}: outside the notebook's folder ({root}); only files in it can be added"
        ]
    if _GLOB_CHARS.search(str(candidate)) and not candidate.exists():
        names = sorted(glob.glob(str(candidate), recursive=True))
        if not names:
            return [], [f"{pattern}: no files match"]
    elif candidate.is_dir():
        names = _visible_files(candidate)
        if not names:
            return [], [f"{pattern}: the folder contains no files"]
    elif candidate.exists():
        names = [str(candidate)]
    else:
        return [], [f"{pattern}: not found"]
    files: list[Path] = []
    refused: list[str] = []
    seen: set[Path] = set()
    for name in names:
        resolved = Path(name).resolve()
        if not _inside(resolved, root):
            refused.append(f"{Path(name).name}: leads outside the notebook's folder; not added")
        elif resolved.is_file() and resolved not in seen:
            seen.add(resolved)
            files.append(resolved)
    if not files and not refused:
        refused.append(f"{pattern}: matches folders only, no files")
    return files, refused


def _static_prefix(path: Path) -> Path:
    """The part of ``path`` before its first glob character (what a glob cannot leave)."""
    parts: list[str] = []
    for part in path.parts:
        if _GLOB_CHARS.search(part):
            break
        parts.append(part)
    return Path(*parts) if parts else path


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _visible_files(folder: Path) -> list[str]:
    found: list[str] = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(os.path.join(here, f) for f in files if not f.startswith("."))
    return sorted(found)
