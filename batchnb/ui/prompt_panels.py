"""The prompt editor's per-document and auto panels.

Each panel reads and writes the editor's traitlets (``prompt``, ``document_prompts``,
``templates``, ``document_types``), so the editor stays the one place the state lives; a panel
only draws it and says what is wrong with it.
"""

from __future__ import annotations

import html
from typing import Any, Protocol

import ipywidgets as widgets

from batchnb.errors import SchemaError
from batchnb.extract.routing import DEFAULT_MIN_CONFIDENCE
from batchnb.extract.schema import schema_from_prompt
from batchnb.extract.templates import FALLBACK, load_templates
from batchnb.ui.schema_view import error_html, note_html

_CELL = "padding:0.05em 0.9em 0.05em 0;text-align:left"


class EditorState(Protocol):
    """What the panels read and write of the prompt editor (its traitlets and helpers)."""

    prompt: str
    document_prompts: dict[str, str]
    templates: dict[str, str]
    document_types: dict[str, str]

    def file_names(self) -> list[str]: ...

    def own_prompts(self) -> dict[str, str]: ...

    def start_classifying(self) -> None: ...


def hidden(widget: widgets.Widget, hide: bool) -> None:
    """Hide or show a widget (it keeps its state)."""
    widget.layout.display = "none" if hide else None


def classed(widget: Any, *classes: str) -> Any:
    """``widget`` with CSS classes: stable hooks for browser tests and styling."""
    for name in classes:
        widget.add_class(name)
    return widget


def _prompt_row(label: str, value: str, placeholder: str, *classes: str) -> widgets.HBox:
    box = classed(
        widgets.Textarea(
            value=value,
            placeholder=placeholder,
            continuous_update=True,
            layout=widgets.Layout(width="70%", height="3.2em"),
        ),
        *classes,
    )
    # A long file name is cut to fit; the whole name shows on hover.
    name = widgets.Label(label, tooltip=label, layout=widgets.Layout(width="28%"))
    return widgets.HBox([name, box])


class PerDocumentPanel(widgets.VBox):
    """A prompt box per file, and the default prompt for files left without one."""

    def __init__(self, editor: EditorState) -> None:
        super().__init__()
        self.editor = editor
        self.default_box = classed(
            widgets.Textarea(
                placeholder="default prompt for files without their own, e.g. invoice number, "
                "date, total",
                continuous_update=True,
                layout=widgets.Layout(width="100%", height="4em"),
            ),
            "batchnb-default-prompt",
        )
        widgets.link((self.default_box, "value"), (editor, "prompt"))
        self.boxes: dict[str, widgets.Textarea] = {}
        self.rows = widgets.VBox()
        self.error = classed(widgets.HTML(), "batchnb-error", "batchnb-document-error")
        self.children = [
            widgets.HTML(note_html("Default prompt")),
            self.default_box,
            widgets.HTML(note_html("Each file's own prompt (empty: the default)")),
            self.rows,
            self.error,
        ]

    def show_files(self, names: list[str]) -> None:
        """One row per file, filled with its prompt if it has one."""
        self.boxes = {}
        rows = []
        for index, name in enumerate(names):
            row = _prompt_row(
                name,
                self.editor.document_prompts.get(name, ""),
                "(the default prompt)",
                "batchnb-file-prompt",
                f"batchnb-file-prompt-{index}",
            )
            box = row.children[1]
            box.observe(lambda change, name=name: self._typed(name, change["new"]), names="value")
            self.boxes[name] = box
            rows.append(row)
        self.rows.children = rows

    def _typed(self, name: str, text: str) -> None:
        prompts = dict(self.editor.document_prompts)
        if text.strip():
            prompts[name] = text
        else:
            prompts.pop(name, None)
        self.editor.document_prompts = prompts

    def problems(self) -> list[str]:
        """Invalid prompts, and the files left without one when there is no default."""
        editor = self.editor
        own = editor.own_prompts()
        problems = []
        for name, text in own.items():
            try:
                schema_from_prompt(text)
            except SchemaError as error:
                problems.append(f"{name}: {error}")
        if editor.prompt.strip():
            try:
                schema_from_prompt(editor.prompt)
            except SchemaError as error:
                problems.append(f"default prompt: {error}")
            return problems
        names = editor.file_names()
        missing = [name for name in names if name not in own]
        if not names:
            problems.append("write a default prompt, or add files and give each its own prompt")
        elif missing:
            problems.append(
                f"no prompt for {', '.join(missing)}: give each its own prompt, "
                "or write a default prompt for the rest"
            )
        return problems

    def refresh(self) -> None:
        for name, box in self.boxes.items():
            wanted = self.editor.document_prompts.get(name, "")
            if box.value.strip() != wanted.strip():
                box.value = wanted
        self.error.value = error_html("\n".join(self.problems()))


class AutoPanel(widgets.VBox):
    """The document types' templates, editable, and the type the classifier gives each file."""

    def __init__(self, editor: EditorState) -> None:
        super().__init__()
        self.editor = editor
        self.boxes: dict[str, widgets.Textarea] = {}
        self.confidences: dict[str, float | None] = {}
        self.rows = widgets.VBox()
        self.new_type = classed(
            widgets.Text(placeholder="new type, e.g. delivery_note"), "batchnb-template-name"
        )
        self.add_button = classed(widgets.Button(description="Add type"), "batchnb-add-template")
        self.add_button.on_click(lambda _: self.add_type(self.new_type.value))
        self.error = classed(widgets.HTML(), "batchnb-error", "batchnb-template-error")
        self.classify_button = classed(
            widgets.Button(description="Classify files", icon="tags"), "batchnb-classify-button"
        )
        self.classify_button.on_click(lambda _: editor.start_classifying())
        self.classification = classed(widgets.HTML(), "batchnb-classification")
        self.children = [
            widgets.HTML(
                note_html(
                    "Each document is classified, then extracted with its type's template "
                    f"('{FALLBACK}': when the classifier is not sure)"
                )
            ),
            self.rows,
            widgets.HBox([self.new_type, self.add_button]),
            self.error,
            self.classify_button,
            self.classification,
        ]

    def add_type(self, name: str) -> None:
        """Add a document type with an empty template (to be filled in)."""
        name = name.strip()
        if name and name not in self.editor.templates:
            self.editor.templates = {**self.editor.templates, name: ""}
            self.new_type.value = ""

    def _typed(self, name: str, text: str) -> None:
        self.editor.templates = {**self.editor.templates, name: text}

    def problems(self) -> list[str]:
        """Each template that is not a valid type name with a prompt making a schema."""
        problems = []
        for name, prompt in self.editor.templates.items():
            try:
                load_templates({name: prompt})
            except SchemaError as error:
                problems.append(str(error))
        return problems

    def refresh(self) -> None:
        templates = self.editor.templates
        if list(self.boxes) != list(templates):
            self.boxes = {}
            rows = []
            for name, prompt in templates.items():
                row = _prompt_row(name, prompt, "fields for this type", "batchnb-template-box")
                box = row.children[1]
                box.observe(lambda c, name=name: self._typed(name, c["new"]), names="value")
                self.boxes[name] = box
                rows.append(row)
            self.rows.children = rows
        for name, box in self.boxes.items():
            if box.value != templates[name]:
                box.value = templates[name]
        self.error.value = error_html("\n".join(self.problems()))
        self.show_classifications()

    def show_classifications(self, error: str = "") -> None:
        """Each file with the type it was classified as (once known) and the template it gets."""
        names = self.editor.file_names()
        if not names:
            self.classification.value = note_html("add files to see the type of each")
            return
        types = self.editor.document_types
        rows = []
        for name in names:
            kind = types.get(name)
            confidence = self.confidences.get(name)
            if kind is None:
                cells = [name, "not classified yet", "", ""]
            else:
                sure = confidence is None or confidence >= DEFAULT_MIN_CONFIDENCE
                template = kind if sure and kind in self.editor.templates else FALLBACK
                shown = "" if confidence is None else f"{confidence:.0%}"
                cells = [name, kind, shown, template]
            rows.append(
                "<tr>"
                + "".join(f"<td style='{_CELL}'>{html.escape(c)}</td>" for c in cells)
                + "</tr>"
            )
        head = "".join(
            f"<th style='{_CELL}'>{c}</th>" for c in ("file", "type", "confidence", "template")
        )
        self.classification.value = (
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            + error_html(error)
        )
