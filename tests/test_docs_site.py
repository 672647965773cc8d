"""The documentation site (mkdocs.yml) builds with warnings as errors, and shows every setting,
every command, every public name and every error a user can meet.

The site is built once per run into a temporary folder (a few seconds): broken links, missing
anchors, pages left out of the nav and docstrings mkdocstrings cannot parse all fail the build.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import inspect
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click
import pytest
import yaml

import batchnb.errors
from batchnb.cli import main
from batchnb.config.settings import SETTINGS_TABLE

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
BUILD_SECONDS = 60


def _hooks() -> ModuleType:
    """scripts/docs_hooks.py, the MkDocs hook that generates pages."""
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "scripts" / "docs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site (``mkdocs build --strict``)."""
    out = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    took = time.monotonic() - started
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    assert took < BUILD_SECONDS, f"the docs build took {took:.0f} s (keep it under {BUILD_SECONDS})"
    return out


def _page(site: Path, name: str) -> str:
    return html.unescape((site / name / "index.html").read_text(encoding="utf-8"))


def _commands(group: click.Group, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Every command below ``group`` as its words (``("batchnb", "db", "upgrade")``)."""
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_the_site_builds_with_warnings_as_errors(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "images" / "wizard-preview.png").is_file()


def test_every_page_of_docs_is_in_the_nav() -> None:
    """A page left out of the nav is a warning, so a build error, but say which one here."""
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)

    def pages(entries: object) -> Iterator[str]:
        if isinstance(entries, list):
            for entry in entries:
                yield from pages(entry)
        elif isinstance(entries, dict):
            for value in entries.values():
                yield from pages(value)
        elif isinstance(entries, str):
            yield entries

    listed = set(pages(config["nav"]))
    present = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    assert present - listed == set(), "add these pages to the nav of mkdocs.yml"
    assert listed - present == set(), "the nav of mkdocs.yml names pages that do not exist"


def test_every_setting_appears_in_the_site(site: Path) -> None:
    page = _page(site, "settings")
    missing = [s.env_var for s in SETTINGS_TABLE if s.env_var not in page]
    assert missing == []
    assert all(" ".join(s.help.split()) in " ".join(page.split()) for s in SETTINGS_TABLE)


def test_every_command_appears_in_the_site(site: Path) -> None:
    """Walks the click group, so a new command or subcommand needs no change here."""
    page = _page(site, "cli")
    commands = list(_commands(main, ("batchnb",)))
    assert ("batchnb", "db", "upgrade") in commands and len(commands) > 20
    missing = [
        " ".join(words)
        for words in commands
        if f'id="{"-".join(words)}"' not in page or " ".join(words) not in page
    ]
    assert missing == []
    assert "Sentinel" not in page, "an option's default rendered as click's internal sentinel"


@pytest.mark.parametrize("package", ["batchnb", "batchnb.ui"])
def test_every_public_name_has_an_api_entry(site: Path, package: str) -> None:
    page = _page(site, "api")
    grouped = _hooks().public_names(package)
    names = {name for names in grouped.values() for name in names}
    assert names == set(importlib.import_module(package).__all__)
    missing = [
        f"{module}.{name}"
        for module, names in grouped.items()
        for name in names
        if f'id="{module}.{name}"' not in page
    ]
    assert missing == []


def test_every_error_a_user_can_meet_is_in_troubleshooting() -> None:
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    errors = [
        name
        for name, value in inspect.getmembers(batchnb.errors, inspect.isclass)
        if value.__module__ == "batchnb.errors" and issubclass(value, Exception | Warning)
    ]
    assert "IntakeError" in errors and "PluginWarning" in errors
    assert [name for name in errors if f"`{name}`" not in page] == []
    assert [kind for kind in batchnb.errors.DOCUMENT_ERROR_KINDS if f"`{kind}`" not in page] == []


def test_an_unknown_marker_fails_the_build_instead_of_vanishing() -> None:
    with pytest.raises(ValueError, match="unknown generated content"):
        _hooks().on_page_markdown("<!-- generated: nonsense -->\n")


def test_every_help_link_of_the_widgets_leads_to_a_page_of_the_site(site: Path) -> None:
    """The widgets' help panels link ``docs_url`` + the page's mkdocs URL (batchnb.ui.help)."""
    from batchnb.ui.help import TOPICS, docs_link

    for name in TOPICS:
        link = docs_link(name, "https://docs.example")
        assert link is not None
        path, _, anchor = link.removeprefix("https://docs.example/").partition("#")
        page = site / path / "index.html"
        assert page.is_file(), f"help topic {name!r} links {link}: no such page"
        assert not anchor or f'id="{anchor}"' in page.read_text(encoding="utf-8"), link
