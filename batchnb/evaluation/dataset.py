"""Evaluation folders: documents, their ground truth, and the task each dataset runs.

An evaluation folder holds ``documents/`` (the files), ``ground_truth/`` (one
``<document stem>.json`` per document, whose ``fields`` are the scoring contract) and
``tasks.json`` (per dataset, the prompt a user would write and the same request as a JSON
Schema whose field names are the ground truth's). This module reads such a folder, picks the
prompt that drives a run, and maps the field names of a run's results onto the ground truth's.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from batchnb.errors import BatchnbError, SchemaError
from batchnb.extract import Field, Schema, schema_from_dict
from batchnb.extract.schema import to_field_name

Use = Literal["prompt", "schema"]
USES: tuple[str, ...] = ("prompt", "schema")

# Words that say the same thing in field names; "qty" and "quantity" map onto each other.
_SYNONYMS = {
    "qty": "quantity",
    "no": "number",
    "nr": "number",
    "num": "number",
    "desc": "description",
    "untaxed": "net",
    "vat": "vat",
}
_FILLER = frozenset({"the", "of", "a", "an", "or", "and", "that", "including", "incl"})

KNOWN_DOCUMENT_TYPES: Mapping[str, str] = {
    "sroie": "receipt",
    "invoice2data": "invoice",
    "zugferd-corpus": "invoice",
}
"""The document type of every document of the public datasets batchnb is measured on, for
folders whose ``tasks.json`` and ground truth do not say it (see :func:`load_datasets`)."""


class EvaluationError(BatchnbError):
    """An evaluation folder or option that cannot be used as given."""


@dataclass(frozen=True)
class Task:
    """One dataset's extraction task from ``tasks.json``.

    ``schema`` is the task's JSON Schema read with :func:`batchnb.extract.schema_from_dict`;
    its field names are the ground truth's, so it also says how each value is compared.
    """

    dataset: str
    prompt: str
    schema: Schema
    notes: tuple[str, ...] = ()
    document_type: str | None = None
    """The type (:data:`batchnb.extract.classify.DOCUMENT_TYPES`) of the dataset's documents,
    from the task's ``document_type`` or :data:`KNOWN_DOCUMENT_TYPES`; ``None`` when unknown."""

    def run_prompt(self, use: Use) -> str:
        """The prompt a run submits: the task's own, or one written from its schema."""
        if use == "prompt":
            return self.prompt
        if use == "schema":
            return prompt_from_schema(self.schema)
        raise EvaluationError(f"unknown --use {use!r}; use one of {', '.join(USES)}")


@dataclass(frozen=True)
class LabelledDocument:
    """A document and its ground truth ``fields`` (absent fields are not labelled).

    ``document_type`` is what the classifier should call it: the ground truth's own
    ``document_type``, else its task's; ``None`` when neither says (not scored).
    """

    dataset: str
    file_name: str
    path: Path
    fields: Mapping[str, Any]
    document_type: str | None = None


@dataclass(frozen=True)
class EvalDataset:
    """The documents of one dataset and the task they run with."""

    name: str
    task: Task
    documents: tuple[LabelledDocument, ...]


@dataclass(frozen=True)
class FieldMapping:
    """Ground-truth field name → result field name, with what could not be paired.

    For array fields, ``items`` maps the ground truth's item keys the same way.
    """

    fields: dict[str, str]
    items: dict[str, dict[str, str]] = field(default_factory=dict)
    unmapped_truth: tuple[str, ...] = ()
    unmapped_result: tuple[str, ...] = ()


Part = tuple[int, int]
"""``(k, n)``: the k-th of n parts (1-based) of a folder's documents, see :func:`in_part`."""


def parse_part(text: str) -> Part:
    """``"1/2"`` → ``(1, 2)``; raises :class:`EvaluationError` for anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    part = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not 1 <= part[0] <= part[1]:
        raise EvaluationError(f"part {text!r} is not K/N with 1 <= K <= N, e.g. 1/2")
    return part


def in_part(group: str, part: Part) -> bool:
    """Whether the document of ``group`` belongs to ``part``: a stable hash of the name.

    The hash (SHA-1, not Python's salted ``hash``) gives every run, machine and engineer the
    same parts, so one part can be developed on and the other only measured. ``group`` is the
    document's file name, or for a rendering of another document (``variant_of``) that
    document's, so the two never land in different parts.
    """
    k, n = part
    digest = hashlib.sha1(group.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n == k - 1


def load_datasets(
    folder: str | Path,
    *,
    datasets: Sequence[str] | None = None,
    limit: int | None = None,
    part: Part | None = None,
) -> list[EvalDataset]:
    """Read an evaluation folder.

    Parameters
    ----------
    datasets:
        Only these datasets (names as in ``tasks.json``); default every dataset with documents.
    limit:
        At most this many documents per dataset, in file-name order.
    part:
        Only the documents of this part (see :func:`in_part`), before ``limit``.

    Raises
    ------
    EvaluationError
        The folder lacks ``tasks.json``, ``documents/`` or ``ground_truth/``, a dataset named in
        ``datasets`` does not exist, or a ground truth file names a dataset without a task.
    """
    root = Path(folder)
    tasks_path, documents_dir, truth_dir = (
        root / "tasks.json",
        root / "documents",
        root / "ground_truth",
    )
    for needed in (tasks_path, documents_dir, truth_dir):
        if not needed.exists():
            raise EvaluationError(
                f"{needed} is missing; an evaluation folder holds documents/, ground_truth/ "
                "and tasks.json"
            )
    tasks = load_tasks(tasks_path)
    wanted = list(datasets) if datasets else None
    for name in wanted or ():
        if name not in tasks:
            raise EvaluationError(
                f"no dataset {name!r} in {tasks_path}; datasets: {', '.join(sorted(tasks))}"
            )
    grouped: dict[str, list[LabelledDocument]] = {}
    for truth_path in sorted(truth_dir.glob("*.json")):
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        dataset = str(truth.get("source") or "")
        if wanted is not None and dataset not in wanted:
            continue
        if dataset not in tasks:
            raise EvaluationError(
                f"{truth_path.name}: dataset {dataset!r} has no task in tasks.json"
            )
        file_name = str(truth.get("document") or "")
        if part is not None and not in_part(str(truth.get("variant_of") or file_name), part):
            continue
        path = documents_dir / file_name
        if not file_name or not path.is_file():
            raise EvaluationError(
                f"{truth_path.name}: document {file_name!r} not in {documents_dir}"
            )
        document_type = str(truth.get("document_type") or "") or tasks[dataset].document_type
        grouped.setdefault(dataset, []).append(
            LabelledDocument(
                dataset, file_name, path, dict(truth.get("fields") or {}), document_type
            )
        )
    result = []
    for name in wanted or sorted(grouped):
        documents = sorted(grouped.get(name, []), key=lambda d: d.file_name)
        if limit is not None:
            documents = documents[: max(limit, 0)]
        if documents:
            result.append(EvalDataset(name, tasks[name], tuple(documents)))
    return result


def load_tasks(path: str | Path) -> dict[str, Task]:
    """Read ``tasks.json``: ``{"tasks": {dataset: {"prompt": ..., "schema": {...}}}}``.

    An entry may say its documents' type (``"document_type": "receipt"``); the public
    datasets of :data:`KNOWN_DOCUMENT_TYPES` need not.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    entries = data.get("tasks") if isinstance(data, Mapping) else None
    if not isinstance(entries, Mapping):
        raise EvaluationError(f"{path}: expected {{'tasks': {{dataset: {{prompt, schema}}}}}}")
    tasks = {}
    for dataset, entry in entries.items():
        prompt = str(entry.get("prompt") or "")
        schema, notes = schema_from_task(entry.get("schema") or {})
        document_type = str(entry.get("document_type") or "") or KNOWN_DOCUMENT_TYPES.get(dataset)
        tasks[dataset] = Task(dataset, prompt, schema, notes, document_type)
    return tasks


def schema_from_task(spec: Mapping[str, Any]) -> tuple[Schema, tuple[str, ...]]:
    """The task's schema; JSON Schema features ``schema_from_dict`` refuses are converted.

    Nested objects and arrays of non-objects cannot be fields: they are dropped with a note, as
    are unknown types (read as strings).
    """
    try:
        return schema_from_dict(spec), ()
    except SchemaError:
        pass
    notes: list[str] = []
    properties = dict(spec.get("properties") or {})
    converted: dict[str, Any] = {}
    for name, prop in properties.items():
        kind = prop.get("type") if isinstance(prop, Mapping) else None
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if kind == "array":
            items = prop.get("items")
            if isinstance(items, Mapping) and isinstance(items.get("properties"), Mapping):
                converted[name] = prop
            else:
                notes.append(f"dropped {name!r}: arrays of non-objects are not supported")
        elif kind == "object":
            notes.append(f"dropped {name!r}: nested objects are not supported")
        elif kind in ("string", "number", "integer", "boolean", "money", "date"):
            converted[name] = {**prop, "type": kind}
        else:
            converted[name] = {**prop, "type": "string"}
            notes.append(f"read {name!r} of type {kind!r} as a string")
    return schema_from_dict({"properties": converted}), tuple(notes)


def prompt_from_schema(schema: Schema) -> str:
    """A prompt whose fields are named exactly like the schema's.

    Batches take a prompt, not a schema, so a schema-driven run submits this text: every field
    becomes its label (underscores as spaces), which ``schema_from_prompt`` turns back into the
    same name; a one-phrase description goes in parentheses as a hint; arrays list their items.
    """
    items = []
    for entry in schema.fields:
        if entry.type == "array":
            subs = ", ".join(_prompt_label(sub) for sub in entry.fields)
            items.append(f"{_prompt_label(entry)} ({subs})")
        else:
            hint = entry.description
            safe_hint = hint and not re.search(r"[,;()\n]|\band\b|&", hint)
            items.append(f"{_prompt_label(entry)} ({hint})" if safe_hint else _prompt_label(entry))
    return "; ".join(items)


def _prompt_label(entry: Field) -> str:
    return entry.name.replace("_", " ")


def map_fields(truth: Schema, result: Schema) -> FieldMapping:
    """Pair the ground truth's fields with a run's fields by normalised name.

    Each pair gets a score: the same name (1.0); the same words in another order (0.95); the
    truth field's description naming the result field (0.9); one's words containing the
    other's (0.6 to 0.8); two arrays otherwise unrelated (0.5). Pairs are taken best first,
    each field used once; arrays pair only with arrays, scalars with scalars.
    """
    pairs = _pair(truth.fields, result.fields)
    items = {}
    for truth_name, result_name in pairs.items():
        truth_field, result_field = truth.field(truth_name), result.field(result_name)
        if truth_field.type == "array":
            items[truth_name] = _pair(truth_field.fields, result_field.fields)
    return FieldMapping(
        fields=pairs,
        items=items,
        unmapped_truth=tuple(n for n in truth.names if n not in pairs),
        unmapped_result=tuple(n for n in result.names if n not in set(pairs.values())),
    )


def _pair(truth: Iterable[Field], result: Iterable[Field]) -> dict[str, str]:
    candidates = []
    result = list(result)
    for i, truth_field in enumerate(truth):
        for j, result_field in enumerate(result):
            if (truth_field.type == "array") != (result_field.type == "array"):
                continue
            score = _name_score(truth_field, result_field)
            if score > 0:
                candidates.append((-score, i, j, truth_field.name, result_field.name))
    pairs: dict[str, str] = {}
    used: set[str] = set()
    for _, _, _, truth_name, result_name in sorted(candidates):
        if truth_name not in pairs and result_name not in used:
            pairs[truth_name] = result_name
            used.add(result_name)
    return pairs


def _words(text: str) -> tuple[str, ...]:
    words = to_field_name(text).split("_")
    return tuple(_SYNONYMS.get(w, w) for w in words if w and w not in _FILLER)


def _name_score(truth: Field, result: Field) -> float:
    if truth.name == result.name:
        return 1.0
    truth_words, result_words = _words(truth.name), _words(result.name)
    if truth_words == result_words:
        return 0.97
    if sorted(truth_words) == sorted(result_words):
        return 0.95
    hint = _words(truth.description) if truth.description else ()
    if hint and sorted(hint) == sorted(result_words):
        return 0.9
    best = 0.0
    for words in (truth_words, hint):
        small, large = sorted((set(words), set(result_words)), key=len)
        if small and small <= large:
            best = max(best, 0.6 + 0.2 * len(small) / len(large))
    if not best and truth.type == result.type == "array":
        best = 0.5  # "lines" and "line items": a task has few arrays, so kind alone pairs them
    return best
