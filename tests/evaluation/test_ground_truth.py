"""Reviewed documents become an evaluation folder, and `batchnb eval` scores against it.

The batch runs on a real worker with an extractor that gets every total wrong; a reviewer
corrects the totals. The ground truth written before the corrections makes the (right)
offline extractor score 0 on totals; written after them, 1.0: the corrections are the truth.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchnb.cli import main
from batchnb.errors import BatchStateError, PermissionDeniedError
from batchnb.evaluation.dataset import load_datasets
from batchnb.extract import FunctionExtractor, OfflineExtractor, register_extractor
from batchnb.queue.worker import Worker
from batchnb.services.batches import Batch
from batchnb.services.review import correct_value, mark_reviewed
from batchnb.services.review_ground_truth import GroundTruthSummary, export_ground_truth
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace
from tests.conftest import SAMPLES

SLOPPY = "wrong-totals-test"
PROMPT = "invoice number, date, total"
DOCUMENTS = [SAMPLES / "maplewood-print-invoice.txt", SAMPLES / "copperleaf-web-invoice.md"]
TRUE_TOTALS = {"maplewood-print-invoice.txt": "845.00", "copperleaf-web-invoice.md": "1980"}


def _wrong_totals(document: Any, schema: Any) -> dict[str, Any]:
    found = OfflineExtractor().extract(document, schema)
    values = {name: None if v is None else v.value for name, v in found.values.items()}
    values["total"] = {"amount": 1.0, "currency": None}
    return values


register_extractor(SLOPPY, lambda: FunctionExtractor(_wrong_totals, name=SLOPPY), replace=True)


@pytest.fixture
def reviewed(workspace: Workspace, worker: Worker) -> Batch:
    """Both invoices extracted with wrong totals, then marked as reviewed."""
    batch = submit(DOCUMENTS, PROMPT, extractor=SLOPPY, workspace=workspace)
    assert batch.wait(timeout=120, progress=False).completed == 2
    results = batch.results()
    assert list(results.total) == [1.0, 1.0]
    assert mark_reviewed([int(i) for i in results.document_id], workspace=workspace) == 2
    return batch


def _eval(folder: Path) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["eval", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_corrections_become_the_truth_batchnb_eval_scores_against(
    workspace: Workspace, reviewed: Batch, tmp_path: Path
) -> None:
    before = export_ground_truth(reviewed, tmp_path / "before", workspace=workspace)
    assert isinstance(before, GroundTruthSummary)
    assert (before.documents, before.corrected_values, before.not_reviewed) == (2, 0, 0)
    scores = _eval(tmp_path / "before")
    # The labels say 1.0; the extractor reads the right total.
    assert scores["fields"]["total"]["micro_f1"] == 0.0
    assert scores["fields"]["invoice_number"]["micro_f1"] == 1.0

    results = reviewed.results()
    for document_id, file_name in zip(results.document_id, results.file_name, strict=True):
        correct_value(int(document_id), "total", TRUE_TOTALS[file_name], workspace=workspace)

    cli = CliRunner().invoke(main, ["ground-truth", str(reviewed.id), str(tmp_path / "after")])
    assert cli.exit_code == 0, cli.output
    assert "wrote 2 reviewed documents (2 corrected values)" in cli.stderr

    after = tmp_path / "after"
    truth = json.loads((after / "ground_truth" / "maplewood-print-invoice.json").read_text())
    assert truth["document"] == "maplewood-print-invoice.txt"
    assert truth["fields"]["total"] == {"amount": 845.0, "currency": None}
    assert (after / "documents" / "maplewood-print-invoice.txt").read_bytes() == DOCUMENTS[
        0
    ].read_bytes()
    [dataset] = load_datasets(after)
    assert dataset.task.prompt == PROMPT
    scores = _eval(after)
    assert scores["fields"]["total"]["micro_f1"] == 1.0
    assert scores["micro_f1"] == 1.0
    assert scores["documents"] == 2


def test_only_reviewed_documents_are_written_and_reruns_replace_their_own_files(
    workspace: Workspace, reviewed: Batch, tmp_path: Path
) -> None:
    ids = [int(i) for i in reviewed.results().document_id]
    mark_reviewed(ids[1], reviewed=False, workspace=workspace)
    folder = tmp_path / "gt"

    first = export_ground_truth(reviewed.id, folder, workspace=workspace)
    again = export_ground_truth(reviewed, folder, workspace=workspace)

    assert (first.documents, first.not_reviewed) == (1, 1)
    assert again.files == first.files == ("maplewood-print-invoice.txt",)
    assert sorted(p.name for p in (folder / "ground_truth").iterdir()) == [
        "maplewood-print-invoice.json"
    ]
    assert "batch-" in first._repr_html_() and "GroundTruthSummary(" in repr(first)

    mark_reviewed(ids, reviewed=False, workspace=workspace)
    with pytest.raises(BatchStateError, match="no reviewed document"):
        export_ground_truth(reviewed, tmp_path / "none", workspace=workspace)
    with pytest.raises(PermissionDeniedError):
        export_ground_truth(reviewed, tmp_path / "x", workspace=workspace, actor="mallory")
