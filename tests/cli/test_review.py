"""`batchnb correct`, `reviewed`, `corrections` and the review line of `batchnb status`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from batchnb.cli import main
from batchnb.services.workspace import Workspace
from tests.services.test_exports import INVOICE, invoice, seed_batch


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def seeded(workspace: Workspace) -> tuple[int, list[int]]:
    return seed_batch(
        workspace,
        [
            {
                "file_name": f"{name}.pdf",
                "status": "completed",
                "results": [(INVOICE, invoice(name, [("chairs", 10.0)], 10.0))],
            }
            for name in ("A", "B")
        ],
    )


def test_correct_then_mark_reviewed_then_see_it_in_status_and_corrections(
    seeded: tuple[int, list[int]],
) -> None:
    batch_id, (first, second) = seeded

    result = invoke("correct", str(first), "total", "EUR 12.50")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f'document {first}: total {{"amount": 10.0, "currency": "EUR"}} -> '
        '{"amount": 12.5, "currency": "EUR"}'
    )
    result = invoke("correct", str(first), "line_items.0.description", '"desks"', "--json")
    assert result.exit_code == 0, result.output
    assert invoke("reviewed", str(first), str(second)).stdout.strip() == (
        "2 documents marked as reviewed"
    )
    assert invoke("reviewed", str(second), "--undo").stdout.strip() == (
        "1 documents marked as not reviewed"
    )

    listed = json.loads(invoke("corrections", str(batch_id), "--json").stdout)
    assert [(c["field"], c["new_value"]) for c in listed] == [
        ("line_items.0.description", "desks"),
        ("total", {"amount": 12.5, "currency": "EUR"}),
    ]
    table = invoke("corrections", "--document", str(first)).stdout
    assert "total" in table and "corrected_by" in table
    assert "(no corrections)" in invoke("corrections", "--document", str(second)).stdout

    status = invoke("status", str(batch_id))
    assert "reviewed 1 of 2, 2 corrected values" in status.stdout
    payload = json.loads(invoke("status", str(batch_id), "--json").stdout)
    assert (payload["reviewed"], payload["corrections"]) == (1, 2)


def test_refusals_are_one_line_messages(seeded: tuple[int, list[int]]) -> None:
    _, (first, _) = seeded
    result = invoke("correct", str(first), "total", "lots")
    assert result.exit_code == 1
    assert "Error: 'lots' is not a money for field 'total'" in result.output
    assert "Traceback" not in result.output
    result = invoke("correct", str(first), "total", "{", "--json")
    assert result.exit_code == 2 and "is not JSON" in result.output
    assert invoke("corrections").exit_code == 2
    result = invoke("ground-truth", "999", "out")
    assert result.exit_code == 1 and "batch 999 does not exist" in result.output
