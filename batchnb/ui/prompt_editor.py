"""The prompt editor: say what to extract, see the schema it becomes, try it on one file.

``PromptEditor()`` is a widget to ``display()``. A strategy selector switches between one
prompt for every file (with a live character count, the schema it becomes, and the option to
edit that schema as JSON), a prompt per file with a default for the rest, and "auto" (each
document type's template, editable, and which type the classifier gives each file). Its preview
extracts one chosen file right now with :func:`~batchnb.services.preview.preview_extraction`
and shows the values with their evidence marked in the page text.

The wizard reads the editor through its traitlets (``strategy``, ``prompt``,
``document_prompts``, ``templates``), :meth:`PromptEditor.problems` and
:meth:`PromptEditor.submit_options`, whose result goes straight to :func:`batchnb.submit`.
The editor holds no database session; a preview or a classification reads only the file.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import traitlets

from batchnb.documents.intake import safe_file_name
from batchnb.errors import BatchnbError, SchemaError
from batchnb.extract.schema import Schema, schema_from_prompt
from batchnb.extract.schema_input import coerce_schema
from batchnb.extract.templates import builtin_templates
from batchnb.services.preview import Preview, classify_file, preview_extraction
from batchnb.services.submit import STRATEGIES
from batchnb.services.workspace import Workspace
from batchnb.ui.background import in_background
from batchnb.ui.prompt_panels import AutoPanel, PerDocumentPanel, classed, hidden
from batchnb.ui.schema_view import Debounce, counter_html, error_html, note_html, schema_html

log = logging.getLogger(__name__)

STRATEGY_LABELS = (("One prompt", "global"), ("Per document", "per_document"), ("Auto", "auto"))
EXAMPLE_PROMPT = "invoice number, date, vendor, total, line items"
Classified = tuple[dict[str, tuple[str, float]], list[str]]
"""File name → (type, confidence), and the files that could not be classified, why."""


class PromptEditor(widgets.VBox):
    """Edit what a batch extracts, see the schema live, and preview one file.

    Parameters
    ----------
    workspace:
        The workspace whose extractors previews use; ``None``: the default workspace,
        opened only when a preview runs.
    extractor:
        The extractor previews run with.
    """

    strategy = traitlets.Unicode("global", help="'global', 'per_document' or 'auto'")
    prompt = traitlets.Unicode("", help="The prompt for every file (per_document: the default)")
    document_prompts = traitlets.Dict(help="File name → its own prompt (per_document)")
    templates = traitlets.Dict(help="Document type → prompt (auto); the built-ins to start")
    use_schema = traitlets.Bool(False, help="Extract with schema_json instead of the prompt")
    schema_json = traitlets.Unicode("", help="The schema as JSON, used when use_schema is set")
    document_types = traitlets.Dict(help="File name → the type the classifier gave it (auto)")

    def __init__(
        self, workspace: Workspace | None = None, *, extractor: str = "offline", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.workspace = workspace
        self.extractor = extractor
        self.files: list[Path] = []
        self.last_preview: Preview | None = None
        self.add_class("batchnb-prompt-editor")

        self.strategy_selector = classed(
            widgets.ToggleButtons(options=STRATEGY_LABELS, value=self.strategy),
            "batchnb-strategy",
        )
        widgets.link((self.strategy_selector, "value"), (self, "strategy"))

        self.prompt_box = classed(
            widgets.Textarea(
                placeholder=EXAMPLE_PROMPT,
                continuous_update=True,
                layout=widgets.Layout(width="100%", height="6em"),
            ),
            "batchnb-prompt-box",
        )
        widgets.link((self.prompt_box, "value"), (self, "prompt"))
        self.counter = classed(widgets.HTML(counter_html(0)), "batchnb-prompt-counter")
        self.schema_toggle = classed(
            widgets.Checkbox(description="edit as schema (JSON)", indent=False),
            "batchnb-schema-toggle",
        )
        widgets.link((self.schema_toggle, "value"), (self, "use_schema"))
        self.schema_box = classed(
            widgets.Textarea(layout=widgets.Layout(width="100%", height="14em", display="none")),
            "batchnb-schema-box",
        )
        widgets.link((self.schema_box, "value"), (self, "schema_json"))
        self.prompt_error = classed(widgets.HTML(), "batchnb-error", "batchnb-prompt-error")
        self.schema_view = classed(widgets.HTML(), "batchnb-schema-view")
        global_panel = widgets.VBox(
            [
                self.prompt_box,
                self.counter,
                self.schema_toggle,
                self.schema_box,
                self.prompt_error,
                self.schema_view,
            ]
        )
        self.per_document = PerDocumentPanel(self)
        self.auto = AutoPanel(self)
        self.panels = widgets.Stack([global_panel, self.per_document, self.auto], selected_index=0)

        self.preview_file = classed(
            widgets.Dropdown(options=[], description="File"), "batchnb-preview-file"
        )
        self.preview_button = classed(
            widgets.Button(description="Preview", icon="eye", disabled=True),
            "batchnb-preview-button",
        )
        self.preview_button.on_click(lambda _: self.start_preview())
        self.busy = classed(widgets.HTML(), "batchnb-busy")
        self.preview_error = classed(widgets.HTML(), "batchnb-error", "batchnb-preview-error")
        self.preview_output = classed(widgets.HTML(), "batchnb-preview-output")
        preview_panel = widgets.VBox(
            [
                widgets.HBox([self.preview_file, self.preview_button, self.busy]),
                self.preview_error,
                self.preview_output,
            ]
        )
        self.children = [self.strategy_selector, self.panels, preview_panel]

        self._refresh_later = Debounce(self._refresh)
        self.observe(self._on_prompt, names="prompt")
        self.observe(self._on_schema_mode, names="use_schema")
        self.observe(lambda _: self._refresh_later(), names="schema_json")
        self.observe(self._on_strategy, names="strategy")
        self.observe(lambda _: self._refresh_later(), names=["document_prompts", "templates"])
        self.templates = builtin_templates()
        self._refresh()

    # --- the wizard's API -------------------------------------------------------------------

    def set_files(self, paths: Sequence[Path | str]) -> None:
        """The files the batch will hold: one prompt box each, and the choice of preview."""
        self.files = [Path(path) for path in paths]
        names = self.file_names()
        self.document_prompts = {
            name: text for name, text in self.document_prompts.items() if name in names
        }
        self.document_types = {
            name: kind for name, kind in self.document_types.items() if name in names
        }
        self.per_document.show_files(names)
        chosen = self.preview_file.value
        self.preview_file.options = names
        self.preview_file.value = chosen if chosen in names else (names[0] if names else None)
        self.preview_button.disabled = not names
        self._refresh()

    def file_names(self) -> list[str]:
        """The files' names as a batch stores them (the keys of ``document_prompts``)."""
        return [safe_file_name(path.name) for path in self.files]

    def problems(self) -> list[str]:
        """What stops a batch from being submitted as set; empty when it is ready."""
        if self.strategy == "auto":
            return self.auto.problems()
        if self.strategy == "per_document":
            return self.per_document.problems()
        schema, problem = self.current_schema()
        return [problem] if schema is None else []

    def submit_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`batchnb.submit` (prompt or schema, strategy, ...).

        Raises
        ------
        SchemaError
            :meth:`problems` is not empty; the message lists every problem.
        """
        problems = self.problems()
        if problems:
            raise SchemaError("; ".join(problems))
        if self.strategy == "auto":
            return {"strategy": "auto", "templates": dict(self.templates)}
        if self.strategy == "per_document":
            own = self.own_prompts()
            default = self.prompt.strip() or None
            if not own:  # every file takes the default: that is one prompt for all
                return {"strategy": "global", "prompt": default}
            options: dict[str, Any] = {"strategy": "per_document", "document_prompts": own}
            if default is not None:
                options["prompt"] = default
            return options
        if self.use_schema:
            schema, _ = self.current_schema()
            assert schema is not None  # problems() was empty
            return {"strategy": "global", "schema": schema.to_dict()}
        return {"strategy": "global", "prompt": self.prompt}

    # --- state read by the panels -------------------------------------------------------------

    def own_prompts(self) -> dict[str, str]:
        """The per-file prompts that are set, for files of the batch."""
        names = set(self.file_names())
        return {
            name: text
            for name, text in self.document_prompts.items()
            if text.strip() and name in names
        }

    def current_schema(self) -> tuple[Schema | None, str]:
        """The global schema (from the prompt, or the JSON when editing the schema), or
        ``None`` and why not."""
        try:
            if self.use_schema:
                return coerce_schema(_json_object(self.schema_json)), ""
            return schema_from_prompt(self.prompt), ""
        except SchemaError as error:
            return None, str(error)

    def preview_options(self, file_name: str) -> dict[str, Any]:
        """What :func:`preview_extraction` needs to preview ``file_name`` as it would run."""
        if self.strategy == "auto":
            return {"strategy": "auto", "templates": dict(self.templates)}
        if self.strategy == "per_document":
            own = self.document_prompts.get(file_name, "").strip()
            return {"strategy": "per_document", "prompt": own or self.prompt}
        if self.use_schema:
            schema, problem = self.current_schema()
            if schema is None:
                raise SchemaError(problem)
            return {"strategy": "global", "schema": schema}
        return {"strategy": "global", "prompt": self.prompt}

    # --- preview --------------------------------------------------------------------------------

    def run_preview(self, file_name: str | None = None) -> Preview | None:
        """Preview one file now (the chosen one by default) and show it; ``None`` on an error,
        which is shown as a message."""
        job = self._preview_job(file_name)
        if job is None:
            return None
        try:
            preview = job()
        except Exception as error:
            self._preview_failed(error)
            return None
        self._show_preview(preview)
        return preview

    def start_preview(self) -> None:
        """What the Preview button does: :meth:`run_preview` off the kernel's event loop."""
        job = self._preview_job(None)
        if job is not None:
            in_background(job, self._show_preview, self._preview_failed)

    def classify_files(self) -> dict[str, str]:
        """Classify every file now (cheap: parse and score words, nothing stored), show the
        types and return them by file name."""
        self._show_classified(_classify_all(self.files))
        return dict(self.document_types)

    def start_classifying(self) -> None:
        """What the Classify button does: :meth:`classify_files` off the kernel's event loop."""
        files = list(self.files)
        self.auto.classify_button.disabled = True
        self.auto.classification.value = note_html(f"classifying {len(files)} files…")
        in_background(lambda: _classify_all(files), self._show_classified, self._classify_failed)

    def _preview_job(self, file_name: str | None) -> Callable[[], Preview] | None:
        """The preview to run for ``file_name`` (default: the chosen file), with the busy
        indicator on; ``None`` (and a message) when there is nothing valid to preview."""
        path = self._path_of(file_name or self.preview_file.value)
        if path is None:
            self._show_preview_error("choose a file to preview (set_files adds them)")
            return None
        try:
            options = self.preview_options(safe_file_name(path.name))
        except SchemaError as error:
            self._show_preview_error(str(error))
            return None
        self._set_busy(path.name)
        return functools.partial(
            preview_extraction, path, extractor=self.extractor, workspace=self.workspace, **options
        )

    def _show_classified(self, classified: Classified) -> None:
        types, problems = classified
        self.auto.classify_button.disabled = False
        for name, (_, confidence) in types.items():
            self.auto.confidences[name] = confidence
        self.document_types = {
            **self.document_types,
            **{name: kind for name, (kind, _) in types.items()},
        }
        self.auto.show_classifications(error="\n".join(problems))

    def _classify_failed(self, error: Exception) -> None:
        log.error("classifying failed", exc_info=error)
        self.auto.classify_button.disabled = False
        self.auto.show_classifications(error=f"classifying failed: {type(error).__name__}: {error}")

    def _set_busy(self, name: str) -> None:
        self.preview_button.disabled = True
        self.preview_error.value = ""
        self.busy.value = note_html(f"extracting {name}…")

    def _show_preview(self, preview: Preview) -> None:
        self.last_preview = preview
        self.busy.value = ""
        self.preview_button.disabled = not self.files
        self.preview_output.value = preview._repr_html_() or ""
        if preview.document_type is not None:
            self.document_types = {**self.document_types, preview.file_name: preview.document_type}
            self.auto.confidences[preview.file_name] = preview.type_confidence
            self.auto.show_classifications()

    def _preview_failed(self, error: Exception) -> None:
        if isinstance(error, BatchnbError):
            message = str(error)
        else:  # a bug: the message for the user, the traceback for the log
            log.error("preview failed", exc_info=error)
            message = f"the preview failed: {type(error).__name__}: {error}"
        self._show_preview_error(message)

    def _show_preview_error(self, message: str) -> None:
        self.busy.value = ""
        self.preview_button.disabled = not self.files
        self.preview_output.value = ""
        self.preview_error.value = error_html(message)

    def _path_of(self, file_name: str | None) -> Path | None:
        for path in self.files:
            if file_name in (path.name, safe_file_name(path.name), str(path)):
                return path
        return None

    # --- live views -----------------------------------------------------------------------------

    @traitlets.validate("strategy")
    def _valid_strategy(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value not in STRATEGIES:
            raise traitlets.TraitError(
                f"unknown strategy {value!r}; use one of {', '.join(map(repr, STRATEGIES))}"
            )
        return value

    def _on_strategy(self, change: dict[str, Any]) -> None:
        self.panels.selected_index = STRATEGIES.index(change["new"])
        self._refresh()

    def _on_prompt(self, change: dict[str, Any]) -> None:
        # The count follows every key; the schema waits for typing to pause.
        self.counter.value = counter_html(len(change["new"]))
        self._refresh_later()

    def _on_schema_mode(self, change: dict[str, Any]) -> None:
        editing = bool(change["new"])
        if editing and not self.schema_json.strip():
            schema, _ = self._schema_of_prompt()
            if schema is not None:
                self.schema_json = json.dumps(schema.to_dict(), indent=2)
        self.schema_box.layout.display = None if editing else "none"
        hidden(self.prompt_box, editing)
        hidden(self.counter, editing)
        self._refresh()

    def _schema_of_prompt(self) -> tuple[Schema | None, str]:
        """The schema the prompt alone makes, or ``None`` and why not."""
        try:
            return schema_from_prompt(self.prompt), ""
        except SchemaError as error:
            return None, str(error)

    def _refresh(self) -> None:
        """Bring the schema view and every panel's messages up to date."""
        self.counter.value = counter_html(len(self.prompt))
        schema, problem = self.current_schema()
        if schema is not None:
            self.schema_view.value = schema_html(schema)
            self.prompt_error.value = ""
        elif not self.use_schema and not self.prompt.strip():
            self.schema_view.value = note_html(f"list the fields to extract, e.g. {EXAMPLE_PROMPT}")
            self.prompt_error.value = ""
        else:
            self.schema_view.value = ""
            self.prompt_error.value = error_html(problem)
        self.per_document.refresh()
        self.auto.refresh()


def _json_object(text: str) -> Any:
    """The JSON a user typed, or a :class:`SchemaError` saying where it breaks."""
    if not text.strip():
        raise SchemaError(
            'the schema is empty; e.g. {"fields": [{"name": "total", "type": "money"}]}'
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SchemaError(
            f"the schema is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}"
        ) from error


def _classify_all(paths: Sequence[Path]) -> Classified:
    """Each file's type and confidence; a file that cannot be read is a problem, not a stop."""
    types: dict[str, tuple[str, float]] = {}
    problems = []
    for path in paths:
        try:
            found = classify_file(path)
        except BatchnbError as error:
            problems.append(str(error))
            continue
        types[safe_file_name(path.name)] = (found.type, found.confidence)
    return types, problems
