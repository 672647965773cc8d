"""Every shell and Python example of the README and of docs/ runs as written.

Each Markdown file gets a fresh workspace and a folder holding ``invoices/`` (the sample
documents) and ``samples/``; its ``python``/``bash`` blocks then run in order, the Python ones in
one interpreter (a later block may use an earlier block's names), each shell block as a
``bash -e`` script. A block that cannot run here is preceded by a comment saying why, e.g.
``<!-- example: not run (starts a worker that runs until stopped) -->``; blocks in other
languages (TOML, JSON, plain synopses) are data, not examples. A block with a title
(```` ```python title="pkg/module.py" ````) is also a file the examples use: it is written to
the folder first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = {"python": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
NOT_RUN = re.compile(r"<!--\s*example:\s*not run\s*\((?P<why>[^)]+)\)\s*-->")
FENCE = re.compile(
    r"^```(?P<lang>[\w-]*)(?P<info>[^\n]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL
)
TITLE = re.compile(r'title="(?P<path>[^"]+)"')

# One interpreter per Markdown file: it runs each block it reads from stdin (JSON lines) in one
# namespace and answers with the traceback of a failure, or nothing.
_PYTHON_RUNNER = """
import contextlib, json, sys, traceback
namespace = {"__name__": "__main__"}
answers = sys.stdout
for line in sys.stdin:
    block = json.loads(line)
    try:
        # What the example prints goes to stderr: stdout carries the answers.
        with contextlib.redirect_stdout(sys.stderr):
            exec(compile(block["code"], block["name"], "exec"), namespace)
        answer = ""
    except BaseException:
        answer = traceback.format_exc()
    print(json.dumps(answer), file=answers, flush=True)
"""


@dataclass(frozen=True)
class Example:
    document: Path
    line: int
    language: str
    code: str
    not_run: str | None

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"


def examples(document: Path) -> list[Example]:
    text = document.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        language = RUNNABLE.get(match.group("lang"))
        if language is None:
            continue
        before = text[: match.start()].rstrip().splitlines()[-1:] or [""]
        skip = NOT_RUN.search(before[0])
        found.append(
            Example(
                document,
                text.count("\n", 0, match.start()) + 1,
                language,
                match.group("body"),
                skip.group("why") if skip else None,
            )
        )
    return found


def _write_titled_blocks(document: Path, folder: Path) -> None:
    for match in FENCE.finditer(document.read_text(encoding="utf-8")):
        title = TITLE.search(match.group("info"))
        if title is not None:
            path = folder / title.group("path")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(match.group("body"), encoding="utf-8")


def _folder(tmp_path: Path) -> dict[str, str]:
    """The folder the examples run in, and their environment."""
    invoices = tmp_path / "invoices"
    shutil.copytree(REPO / "samples" / "documents", invoices)
    (tmp_path / "samples").symlink_to(REPO / "samples")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BATCHNB_") or name.startswith("BATCHNB_TEST_")
    }
    env["BATCHNB_HOME"] = str(tmp_path / "home")
    env["BATCHNB_HEARTBEAT_SECONDS"] = "0.5"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_the_examples_run_as_written(document: Path, tmp_path: Path) -> None:
    found = examples(document)
    if not any(example.not_run is None for example in found):
        pytest.skip(f"{document.name} has no runnable example")
    env = _folder(tmp_path)
    _write_titled_blocks(document, tmp_path)
    python = subprocess.Popen(
        [sys.executable, "-c", _PYTHON_RUNNER],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert python.stdin is not None and python.stdout is not None
    try:
        for example in found:
            if example.not_run is not None:
                continue
            if example.language == "python":
                python.stdin.write(json.dumps({"name": example.name, "code": example.code}) + "\n")
                python.stdin.flush()
                failure = json.loads(python.stdout.readline() or '"the interpreter died"')
                assert not failure, f"{example.name} failed:\n{failure}"
            else:
                result = subprocess.run(
                    ["bash", "-e", "-o", "pipefail", "-c", example.code],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert result.returncode == 0, (
                    f"{example.name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
                )
    finally:
        python.stdin.close()
        python.wait(timeout=60)


def test_every_not_run_example_says_why() -> None:
    """The reasons are read by people: a bare marker would hide an example that broke."""
    for document in DOCUMENTS:
        for example in examples(document):
            assert example.not_run is None or len(example.not_run.split()) >= 3, example.name
