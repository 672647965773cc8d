"""The help panel: every component has a how-to whose link names a real docs page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchnb.ui import HelpPanel
from batchnb.ui.help import TOPICS, Helpful, docs_link, help_html, set_docs_url, with_help

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMPONENTS = {
    "dropzone",
    "prompts",
    "wizard",
    "progress",
    "manager",
    "results",
    "analytics",
    "magics",
}


@pytest.fixture
def docs_url() -> Iterator[None]:
    yield
    set_docs_url(None)


def test_every_component_has_a_topic_with_how_tos() -> None:
    assert set(TOPICS) == COMPONENTS
    for topic in TOPICS.values():
        assert topic.title and topic.summary and len(topic.steps) >= 2


@pytest.mark.parametrize("name", sorted(TOPICS))
def test_each_topic_links_to_a_docs_page_that_exists(name: str) -> None:
    page, _, anchor = TOPICS[name].page.partition("#")
    assert (DOCS / page).is_file()
    if anchor:
        headings = [
            line.lstrip("#").strip().lower().replace(" ", "-")
            for line in (DOCS / page).read_text(encoding="utf-8").splitlines()
            if line.startswith("#")
        ]
        assert anchor in headings
    assert docs_link(name) is None  # no documentation site configured: no link
    assert f"<code>docs/{page}</code>" in help_html(name)


def test_the_docs_base_url_is_configurable(docs_url: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The site is mkdocs' build of docs/: a page is a folder, its anchor kept.
    assert docs_link("magics", "https://example.org/batchnb/") == (
        "https://example.org/batchnb/magics/"
    )
    monkeypatch.setenv("BATCHNB_DOCS_URL", "https://docs.example/batchnb")
    assert docs_link("analytics") == "https://docs.example/batchnb/analytics/#in-a-notebook"
    set_docs_url("https://intranet.example/docs/")
    assert "href='https://intranet.example/docs/analytics/#in-a-notebook'" in help_html("analytics")


def test_the_panel_syncs_title_body_and_whether_it_is_open() -> None:
    panel = HelpPanel("analytics")
    assert (panel.topic, panel.title, panel.expanded) == ("analytics", "Analytics", False)
    assert "<li>Hover a bar or a slice to read its value.</li>" in panel.body
    assert "<code>docs/analytics.md</code>" in panel.body
    linked = HelpPanel("analytics", docs_url="https://docs.example")
    assert "href='https://docs.example/analytics/#in-a-notebook' target='_blank'" in linked.body
    assert HelpPanel("magics", expanded=True).expanded
    assert repr(panel) == "HelpPanel('analytics')"


def test_an_unknown_topic_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="no help topic 'upload'; choose one of: analytics, "):
        HelpPanel("upload")


def test_text_is_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    topic = TOPICS["magics"]
    odd = type(topic)("T", "<b>bold</b>", ("a & b",), "magics.md")
    monkeypatch.setitem(TOPICS, "magics", odd)
    body = help_html("magics")
    assert "&lt;b&gt;bold&lt;/b&gt;" in body and "a &amp; b" in body


def test_commands_between_backticks_are_code() -> None:
    body = help_html("magics")
    assert "<code>%load_ext batchnb</code>" in body
    assert "<code>%%extract PROMPT</code>, then file paths" in body


def test_widgets_gain_a_help_method() -> None:
    class Grid(Helpful):
        help_topic = "results"

    panel = Grid().help()
    assert panel.topic == "results" and panel.expanded
    assert not Grid().help(expanded=False).expanded


def test_an_app_puts_the_panel_above_a_component() -> None:
    import ipywidgets as widgets

    component = widgets.Label("the wizard")
    box = with_help(component, "wizard", expanded=True)
    panel, shown = box.children
    assert isinstance(panel, HelpPanel) and panel.topic == "wizard" and panel.expanded
    assert shown is component
