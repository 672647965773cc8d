"""Tiny notebooks for the schedule tests: each run appends one line to a file, or fails."""

from __future__ import annotations

from pathlib import Path

import nbformat


def write_notebook(path: Path) -> Path:
    """A notebook with papermill parameters ``marker`` (a file), ``text``, ``fail`` and
    ``wait_seconds``: it waits, appends ``text`` as one line to ``marker``, then raises when
    ``fail`` is true."""
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell(
        'marker = "ran.txt"\ntext = "ran"\nfail = False\nwait_seconds = 0\n'
    )
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "import time\n"
            "from pathlib import Path\n"
            "time.sleep(wait_seconds)\n"
            'with Path(marker).open("a") as out:\n'
            '    out.write(f"{text}\\n")\n'
        ),
        nbformat.v4.new_code_cell(
            "class TooManyFailures(Exception):\n"
            "    pass\n"
            "if fail:\n"
            '    raise TooManyFailures("3 of 4 documents failed (75%), over the allowed 10%")\n'
        ),
    ]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, path)
    return path
