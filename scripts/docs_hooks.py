"""MkDocs hooks (``hooks:`` in mkdocs.yml): pages that are generated from the code at build time.

A page asks for generated content with a marker line, replaced before Markdown is rendered:

- ``<!-- generated: settings -->``: the settings table, from ``SETTINGS_TABLE`` (the same
  rendering as the README's table);
- ``<!-- generated: api batchnb -->`` and ``<!-- generated: api batchnb.ui -->``: one
  mkdocstrings directive per public name of the package (``__all__``), grouped by the module
  that defines it, so a name added to ``__all__`` is documented without touching the page.

The docstrings are written for Sphinx-style readers too (``:func:`name```); the roles are
dropped from the rendered pages (``on_page_content``), leaving the name in code type, and a
leading ``~`` keeps only the last part of the dotted name, as Sphinx does.

The CLI reference needs no hook: mkdocs-click walks the click group itself.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

MARKER = re.compile(r"^<!-- generated: (?P<what>[\w. ]+?) -->$", re.MULTILINE)
ROLE = re.compile(
    r":(?:func|class|meth|mod|data|attr|exc|obj):<code>(?P<tilde>~)?(?P<name>[^<]*)</code>"
)


def settings_table() -> str:
    """The settings table in Markdown (the README's rendering of ``SETTINGS_TABLE``)."""
    from batchnb.config.settings import render_settings_table

    return render_settings_table()


def public_names(package: str) -> dict[str, list[str]]:
    """The names of ``package.__all__`` grouped by the module defining each, in module order.

    The packages import their services lazily (``_LAZY``: name → module); the module is read
    from that table when it is there, so building the docs imports no service.
    """
    module = importlib.import_module(package)
    lazy: dict[str, str] = getattr(module, "_LAZY", {})
    grouped: dict[str, list[str]] = {}
    for name in module.__all__:
        home = lazy.get(name) or getattr(module, name).__module__
        grouped.setdefault(home, []).append(name)
    return dict(sorted(grouped.items()))


def api_reference(package: str) -> str:
    """A heading per module and a mkdocstrings directive per public name of ``package``."""
    lines: list[str] = []
    for module, names in public_names(package).items():
        lines += [f"## `{module}`", ""]
        for name in names:
            lines += [f"::: {module}.{name}", ""]
    return "\n".join(lines)


def generate(what: str) -> str:
    """The Markdown a marker asks for."""
    if what == "settings":
        return settings_table()
    kind, _, argument = what.partition(" ")
    if kind == "api" and argument:
        return api_reference(argument)
    raise ValueError(f"unknown generated content {what!r} (see scripts/docs_hooks.py)")


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs event: replace each marker of the page with what it asks for."""
    return MARKER.sub(lambda match: generate(match.group("what")), markdown)


def _without_role(match: re.Match[str]) -> str:
    name = match.group("name")
    return f"<code>{name.rsplit('.', 1)[-1] if match.group('tilde') else name}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """MkDocs event: Sphinx roles left in rendered docstrings become plain code."""
    return ROLE.sub(_without_role, html)
