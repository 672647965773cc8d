"""Where the widgets' front ends (anywidget ES modules and CSS) are found.

They are kept in the repository's top-level ``widgets/`` folder and shipped inside the wheel as
``batchnb/_widgets`` (pyproject's ``force-include``); an editable install reads them from the
repository. Either way they load from disk: no build step and no network.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def widgets_dir() -> Path:
    """The folder holding the widgets' ``.js`` and ``.css`` files."""
    installed = _PACKAGE / "_widgets"
    return installed if installed.is_dir() else _PACKAGE.parent / "widgets"


def asset(name: str) -> Path:
    """The path of one front-end file, e.g. ``asset("dropzone.js")``.

    Raises
    ------
    FileNotFoundError
        When the file is missing (a broken install), naming where it was looked for.
    """
    path = widgets_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"batchnb widget file {name!r} is missing from {path.parent}")
    return path
