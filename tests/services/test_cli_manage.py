"""`batchnb list / retry / cancel / delete / audit`, through click's runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from batchnb.cli import main

from .conftest import SAMPLES

PROMPT = "invoice number, date, total"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli-home"
    monkeypatch.setenv("BATCHNB_HOME", str(path))
    monkeypatch.setenv("BATCHNB_HEARTBEAT_SECONDS", "0.5")
    monkeypatch.setenv("BATCHNB_USER", "alice")
    monkeypatch.setenv("BATCHNB_ADMINS", "boss")
    return path


def invoke(*args: str, user: str | None = None, answer: str | None = None) -> Result:
    env = {"BATCHNB_USER": user} if user else None
    return CliRunner().invoke(main, list(args), input=answer, env=env, catch_exceptions=False)


def submit(*paths: Path, name: str | None = None) -> int:
    extra = ["--name", name] if name else []
    result = invoke("submit", *map(str, paths), "--prompt", PROMPT, *extra)
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


def listed(*args: str, user: str | None = None) -> dict[str, Any]:
    result = invoke("list", "--json", *args, user=user)
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def test_list_filters_and_prints_json_and_a_table(home: Path) -> None:
    first = submit(SAMPLES, name="all samples")
    second = submit(SAMPLES / "maplewood-print-invoice.txt", name="Maplewood 100%")
    payload = listed()
    assert payload["total"] == 2 and payload["page"] == 1
    rows = payload["rows"]
    assert [row["id"] for row in rows] == [second, first], "newest first"
    assert rows[1]["document_count"] == 7 and rows[1]["pending"] == 7
    assert rows[1]["owner"] == "alice" and rows[1]["created_at"].startswith("20")
    assert [r["id"] for r in listed("--search", "100%")["rows"]] == [second]
    assert [r["id"] for r in listed("--search", "BLUEFIN")["rows"]] == [first]
    assert listed("--status", "completed")["total"] == 0
    assert listed("--failed")["total"] == 0
    assert listed("--no-failed", "--sort", "name", "--asc")["rows"][0]["id"] == first
    assert listed("--from", "2000-01-01", "--to", "2000-12-31")["total"] == 0
    assert listed(user="bob")["total"] == 0, "bob sees only his own batches"
    assert listed("--owner", "alice", user="boss")["total"] == 2
    table = invoke("list", "--page-size", "1")
    assert table.exit_code == 0
    assert "Maplewood 100%" in table.stdout and "all samples" not in table.stdout
    assert "page 1 of 2, 2 batches" in table.stderr
    created = rows[0]["created_at"]  # JSON keeps the full moment; the table shows seconds
    assert created[:19].replace("T", " ") in table.stdout and created[19:] not in table.stdout


def test_list_refusals_are_clean_messages(home: Path) -> None:
    result = invoke("list", "--owner", "bob")
    assert result.exit_code == 1
    assert "may not list the batches of 'bob'" in result.stderr
    assert "Traceback" not in result.output
    assert invoke("list", "--sort", "size").exit_code == 2, "click refuses unknown columns"


def test_cancel_then_delete_with_confirmation(home: Path) -> None:
    batch = submit(SAMPLES)
    other = submit(SAMPLES / "maplewood-print-invoice.txt", name="other")
    result = invoke("cancel", str(batch))
    assert result.exit_code == 0
    assert f"cancelled 7 waiting or running documents of batch {batch}" in result.stdout
    assert listed("--status", "cancelled")["total"] == 1

    refused = invoke("delete", str(batch), answer="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.stderr
    assert f"Delete batch {batch}" in refused.stdout
    assert listed()["total"] == 2, "answering no deletes nothing"

    confirmed = invoke("delete", str(batch), answer="y\n")
    assert confirmed.exit_code == 0, confirmed.stderr
    assert f"deleted batch {batch}: 7 documents" in confirmed.stdout
    assert [r["id"] for r in listed()["rows"]] == [other]

    forced = invoke("delete", str(other), "--yes")
    assert forced.exit_code == 0 and "Delete batch" not in forced.stdout
    assert "1 stored files removed" in forced.stdout
    assert listed()["total"] == 0
    missing = invoke("delete", str(other), "--yes")
    assert missing.exit_code == 1 and f"batch {other} does not exist" in missing.stderr


def test_retry_requeues_failed_documents(home: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.7\nnot a real PDF\n%%EOF\n")
    ran = invoke("run", str(SAMPLES / "maplewood-print-invoice.txt"), str(corrupt), "-p", PROMPT)
    assert ran.exit_code == 3 and "1 completed, 1 failed" in ran.stderr
    batch = listed()["rows"][0]["id"]
    assert listed("--failed")["total"] == 1
    result = invoke("retry", str(batch), "--prompt", "total")
    assert result.exit_code == 0
    assert f"queued 1 failed documents of batch {batch} again" in result.stdout
    row = listed()["rows"][0]
    assert (row["failed"], row["pending"], row["status"]) == (0, 1, "pending")
    again = invoke("retry", str(batch))
    assert "has no failed documents: nothing to retry" in again.stdout
    wrong = invoke("retry", str(batch), "--document", "999")
    assert wrong.exit_code == 1 and f"batch {batch} has no document 999" in wrong.stderr


def test_a_non_owner_is_refused_and_the_audit_shows_it(home: Path) -> None:
    batch = submit(SAMPLES / "maplewood-print-invoice.txt")
    for command in (["cancel", str(batch)], ["retry", str(batch)], ["delete", str(batch), "-y"]):
        result = invoke(*command, user="bob")
        assert result.exit_code == 1
        assert f"user 'bob' may not {command[0]} batch {batch} (owned by alice)" in result.stderr
    assert listed()["total"] == 1
    assert invoke("cancel", str(batch), user="boss").exit_code == 0, "an admin may"

    events = json.loads(invoke("audit", "--json").stdout)
    assert [(e["actor"], e["action"], e["allowed"]) for e in events] == [
        ("boss", "cancel", True),
        ("bob", "delete", False),
        ("bob", "retry", False),
        ("bob", "cancel", False),
        ("alice", "submit", True),
    ]
    assert events[1]["details"]["owner"] == "alice"
    assert events[0]["target_id"] == str(batch) and events[0]["created_at"].startswith("20")
    refused = json.loads(invoke("audit", "--json", "--actor", "bob", "--limit", "2").stdout)
    assert [e["action"] for e in refused] == ["delete", "retry"]
    table = invoke("audit", "--action", "cancel")
    assert table.exit_code == 0
    assert "REFUSED" in table.stdout and "boss" in table.stdout and "submit" not in table.stdout
    assert json.loads(invoke("audit", "--json", user="carol").stdout) == []
