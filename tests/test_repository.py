"""What a clone holds: the licence pyproject names, and every path its docs tell a user about."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL = sorted(path.name for path in REPO.iterdir() if path.is_dir() and path.name[0] != ".")
MARKDOWN = sorted(
    path
    for path in [*REPO.glob("*.md"), *REPO.glob("*/*.md")]
    if path.parts[len(REPO.parts)] not in (".venv", ".git", ".pytest_cache")
)
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")
CODE = re.compile(r"`(?P<path>[^`\s*?]+)`")
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _paths_told(document: Path) -> list[str]:
    # Prose only: code blocks hold examples (their paths are made by the examples themselves).
    text = FENCED.sub("", document.read_text(encoding="utf-8"))
    told = [
        os.path.relpath((document.parent / match["target"]).resolve(), REPO)
        for match in LINK.finditer(text)
        if "://" not in match["target"] and not match["target"].startswith("mailto:")
    ]
    told += [
        match["path"].rstrip("/")
        for match in CODE.finditer(text)
        if match["path"].split("/")[0] in TOP_LEVEL and "/" in match["path"]
    ]
    return told


def test_the_licence_pyproject_names_is_in_the_clone() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    licence = (REPO / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in licence


@pytest.mark.parametrize("document", MARKDOWN, ids=lambda path: str(path.relative_to(REPO)))
def test_every_path_the_docs_name_exists_in_the_clone(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert "../shared" not in text and "DESIGN.md" not in text, "points outside the clone"
    missing = [
        path
        for path in _paths_told(document)
        if path.startswith("..") or not (REPO / path).exists()
    ]
    assert missing == []


def test_the_path_check_sees_links_and_code_paths() -> None:
    # The check above must not pass by finding nothing: the README names many paths.
    told = _paths_told(REPO / "README.md")
    assert "docs/extraction.md" in told and "samples/documents" in told


def test_every_picture_the_docs_show_is_taken_by_a_browser_test() -> None:
    """README and docs show the browser tests' own screenshots (``make docs-images`` takes
    them again), so a picture cannot drift from what the product looks like."""
    taken = {
        match.group(1)
        for test in (REPO / "tests" / "browser").glob("*.py")
        for match in re.finditer(r"""["']([\w-]+\.png)["']""", test.read_text())
    }
    shown = {
        Path(match.group("target")).name
        for document in MARKDOWN
        for match in LINK.finditer(document.read_text())
        if match.group("target").endswith(".png")
    }
    assert shown, "no picture found: the link pattern no longer matches"
    assert shown <= taken, f"pictures no browser test takes: {sorted(shown - taken)}"
