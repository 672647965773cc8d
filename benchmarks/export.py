"""Exports: batchnb's writers against pandas and xlsxwriter, time and peak memory, same run.

Generates ``--documents`` invoices (about 5 line items each; unicode vendors, missing values,
formula-like descriptions) and, for both modes (``normal``: one row per document,
``multi-row``: one row per line item) and every format, measures:

* batchnb, writer path: ``batchnb.formats.write()`` fed by a lazy generator of ``ExportRecord``;
* batchnb, database path: ``batchnb.services.exports.export()`` reading the same documents from a
  seeded SQLite workspace (skipped when that module is missing);
* baselines on the same flattened rows, held in memory beforehand (building them is reported
  apart, not timed): ``DataFrame.to_csv``, ``DataFrame.to_parquet`` (pyarrow),
  ``DataFrame.to_excel(engine="openpyxl")`` and xlsxwriter ``constant_memory`` with typed writes.

Every case runs in its own subprocess (the script re-invokes itself with ``--case``); its peak
memory is the growth of the child's peak RSS over its RSS just before the timed call (the
kernel's high-water mark is reset there, so setting up does not count). batchnb is also run on
``--flat-documents`` (10,000) documents to show that its peak does not grow with the size.

Run: ``.venv/bin/python benchmarks/export.py [--documents 100000] [--quick] [--formats csv,xlsx]
[--modes normal] [--skip-to-excel-above ROWS] [--no-db] [--profile] [--dir PARENT] [--smoke]``
``--smoke`` is the smallest run through every kind of case (20 and 10 documents; CSV, Parquet
and Excel, which between them use every baseline; multi-row; the profiles): it checks the
script, and exits 1 when a case fails. Otherwise the exit code is always 0: this is a
benchmark, not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import importlib
import importlib.util
import io
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from batchnb.extract.schema import Schema
from batchnb.formats import ExportRecord, build_layout, iter_rows, write
from batchnb.formats.cells import json_text

MODES = ("normal", "multi-row")
FORMATS = ("csv", "parquet", "xlsx", "json", "jsonl")
OWNER = "bench"
RESULT_MARK = "RESULT "
CSV_PARQUET_AIM = 1.2
XLSXWRITER_AIM = 1.5
FLAT_AIM = 1.25  # peak at N / peak at --flat-documents ...
FLAT_SLACK_MB = 10.0  # ... or a growth under this many MB (RSS noise of small peaks)

SCHEMA: dict[str, Any] = Schema.from_dict(
    {
        "fields": [
            {"name": "invoice_number", "label": "Invoice Number", "type": "string"},
            {"name": "invoice_date", "label": "Invoice Date", "type": "date"},
            {"name": "vendor", "label": "Vendor", "type": "string"},
            {"name": "total", "label": "Total", "type": "money"},
            {"name": "paid", "label": "Paid", "type": "boolean"},
            {
                "name": "line_items",
                "label": "Line Items",
                "type": "array",
                "fields": [
                    {"name": "description", "label": "Description", "type": "string"},
                    {"name": "quantity", "label": "Quantity", "type": "number"},
                    {"name": "unit_price", "label": "Unit Price", "type": "money"},
                    {"name": "amount", "label": "Amount", "type": "money"},
                ],
            },
        ]
    }
).to_dict()

VENDORS = (
    "Müller & Söhne GmbH",
    "Société Générale S.A.",
    "Ørsted A/S",
    "東京商事株式会社",
    "Northwind Traders Ltd",
    "Łódź Logistics Sp. z o.o.",
    "Café Olé SARL",
    "Straße & Partner KG",
    "한국무역 주식회사",
    "Blue Sky Café 🌤",
    "Acme Corporation",
)
DESCRIPTIONS = (
    "Widget, grade A",
    "Consulting hours (März)",
    "Shipping & handling",
    "-10% early payment discount",
    "Ersatzteil Nr. 4711",
    "Licence renewal 2024",
    "=Service fee",
    "Café supplies ☕",
    'Cable 5 m, black "premium"',
    "Support — premium tier",
)
CURRENCIES = ("EUR", "EUR", "EUR", "USD", "GBP")
POOL = 1009  # distinct line-item lists; documents cycle through them (a prime: no aliasing)
START_DATE = dt.date(2023, 1, 2)
WRITER_LIBRARIES = ("pandas", "pyarrow.parquet", "openpyxl", "xlsxwriter")


# ---------------------------------------------------------------------------------------------
# generated documents


def _money(amount: float, currency: str) -> dict[str, Any]:
    return {"amount": round(amount, 2), "currency": currency}


def _pool_entry(k: int) -> tuple[list[dict[str, Any]], float, str, dict[str, Any]]:
    """Line items (none for one document in 50, else 3-7), their total, currency, evidence."""
    currency = CURRENCIES[k % len(CURRENCIES)]
    count = 0 if k % 50 == 0 else 3 + k % 5
    items, total = [], 0.0
    for j in range(count):
        quantity: float = 1 + (k * 7 + j * 3) % 12
        if j == 2:
            quantity += 0.5  # hours, kilograms: not every quantity is whole
        price = round(4.99 + (k * 13 + j * 31) % 500 + 0.25 * j, 2)
        total += quantity * price
        items.append(
            {
                "description": DESCRIPTIONS[(k + j) % len(DESCRIPTIONS)],
                "quantity": quantity,
                "unit_price": _money(price, currency),
                "amount": _money(quantity * price, currency),
            }
        )
    evidence = {
        name: {"page": 1, "start": 40 * n, "end": 40 * n + 18, "raw": name, "confidence": 0.9}
        for n, name in enumerate(("invoice_number", "invoice_date", "vendor", "total", "paid"))
    }
    evidence["line_items"] = {"page": 1, "start": 300, "end": 900, "raw": "", "confidence": 0.8}
    return items, total * 1.19, currency, evidence


_POOL = [_pool_entry(k) for k in range(POOL)]


def document_data(i: int) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Values (stored shape: money dicts, ISO dates), evidence and confidence of document ``i``."""
    items, total, currency, evidence = _POOL[i % POOL]
    date = None if i % 97 == 0 else (START_DATE + dt.timedelta(days=i % 700)).isoformat()
    data = {
        "invoice_number": f"INV-{2023 + i % 2}-{i:07d}",
        "invoice_date": date,
        "vendor": VENDORS[i % len(VENDORS)],
        "total": _money(total + i % 100, currency),
        "paid": None if i % 10 == 9 else i % 3 == 0,
        "line_items": items,
    }
    return data, evidence, 0.75 + (i % 20) / 100


def file_name(i: int) -> str:
    return f"invoice-{i:07d}.pdf"


def records(n: int, batch_id: int = 1, first_id: int = 1) -> Iterator[ExportRecord]:
    """``n`` documents, lazily: nothing is kept once a record has been consumed."""
    for i in range(n):
        data, evidence, confidence = document_data(i)
        yield ExportRecord(
            document_id=first_id + i,
            file_name=file_name(i),
            batch_id=batch_id,
            status="completed",
            data=data,
            schema=SCHEMA,
            confidence=confidence,
            evidence=evidence,
        )


def flat_rows(n: int, mode: str, fmt: str) -> tuple[list[str], list[list[Any]]]:
    """The rows batchnb writes, materialised for the baselines (arrays as JSON text outside
    Parquet, as batchnb writes them in CSV and Excel)."""
    layout = build_layout(SCHEMA, mode)  # type: ignore[arg-type]
    names = layout.names
    rows = [[row[name] for name in names] for row in iter_rows(records(n), layout)]
    if mode == "normal" and fmt != "parquet":
        index = names.index("line_items")
        for row in rows:
            row[index] = json_text(row[index])
    return names, rows


# ---------------------------------------------------------------------------------------------
# memory


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_mb()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------------------------------------
# cases (each runs in a child process)


def xlsxwriter_rows(path: Path, names: list[str], rows: list[list[Any]]) -> None:
    """Cell by cell with typed writes, as a hand-written constant-memory export would."""
    import xlsxwriter  # type: ignore[import-untyped]

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Documents")
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, names)
    for r, row in enumerate(rows, 1):
        for c, value in enumerate(row):
            kind = type(value)
            if value is None:
                continue
            if kind is str:
                sheet.write_string(r, c, value)
            elif kind is bool:
                sheet.write_boolean(r, c, value)
            elif kind is int or kind is float:
                sheet.write_number(r, c, value)
            elif kind is dt.date:
                sheet.write_datetime(r, c, value, date_format)
            else:
                sheet.write_string(r, c, str(value))
    workbook.close()


def prepare(spec: dict[str, Any]) -> tuple[Callable[[], int], dict[str, Any]]:
    """Set a case up (untimed) and return its timed call and extra figures."""
    kind, fmt, mode, n = spec["case"], spec.get("format"), spec.get("mode", "normal"), spec["n"]
    path = Path(spec["dir"]) / f"{kind}-{mode}.{fmt}"
    extra: dict[str, Any] = {"path": str(path)}
    if kind == "records":
        return lambda: sum(1 for _ in records(n)), extra
    if kind == "flatten":
        layout = build_layout(SCHEMA, mode)
        return lambda: sum(1 for _ in iter_rows(records(n), layout)), extra
    if kind == "batchnb":
        return lambda: write(records(n), fmt, path, mode=mode, schema=SCHEMA).rows, extra
    if kind == "db":
        return prepare_db(spec, path, extra)
    if kind == "seed":
        return lambda: seed(Path(spec["home"]), spec["batches"]), extra
    started = time.perf_counter()
    names, rows = flat_rows(n, mode, fmt)
    if kind == "xlsxwriter":
        extra["build_s"] = time.perf_counter() - started
        return lambda: (xlsxwriter_rows(path, names, rows), len(rows))[1], extra
    return prepare_pandas(kind, path, names, rows, started, extra)


def prepare_pandas(
    kind: str,
    path: Path,
    names: list[str],
    rows: list[list[Any]],
    started: float,
    extra: dict[str, Any],
) -> tuple[Callable[[], int], dict[str, Any]]:
    """A DataFrame of the rows (its building time reported, not timed) and its writer call."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=names)
    rows.clear()
    extra["build_s"] = time.perf_counter() - started
    extra["frame_mb"] = frame.memory_usage(deep=True).sum() / 2**20
    if kind == "to_csv":
        return lambda: (frame.to_csv(path, index=False), len(frame))[1], extra
    if kind == "to_parquet":
        return lambda: (frame.to_parquet(path, engine="pyarrow", index=False), len(frame))[1], extra
    if kind == "to_excel":
        return lambda: (frame.to_excel(path, engine="openpyxl", index=False), len(frame))[1], extra
    raise SystemExit(f"unknown case {kind!r}")


def prepare_db(
    spec: dict[str, Any], path: Path, extra: dict[str, Any]
) -> tuple[Callable[[], int], dict[str, Any]]:
    from batchnb.config import load_settings
    from batchnb.services.exports import export
    from batchnb.services.workspace import open_workspace

    workspace = open_workspace(load_settings(environ={}, home=spec["home"]))

    def run() -> int:
        handle = export(
            spec["batch"],
            spec["format"],
            spec["mode"],
            path,
            background=False,
            workspace=workspace,
            actor=OWNER,
        )
        return int(handle.info().row_count or 0)

    return run, extra


def seed(home: Path, batches: list[list[int]]) -> int:
    """A workspace whose batches hold completed documents with results, by bulk Core inserts.

    ``batches`` lists ``[batch_id, documents, first_document_id]``; rows mirror what submit()
    and the document job handler write (``DocumentJobHandler.succeeded``).
    """
    from sqlalchemy import insert

    from batchnb.config import load_settings
    from batchnb.db.models import Document, ExtractedData, ExtractionBatch, ExtractionJob, utcnow
    from batchnb.services.workspace import open_workspace

    workspace = open_workspace(load_settings(environ={}, home=str(home)))
    now, step, total = utcnow(), 5000, 0
    for batch_id, n, first in batches:
        with workspace.db.begin() as connection:
            connection.execute(
                insert(ExtractionBatch),
                {
                    "id": batch_id,
                    "name": f"bench {n} invoices",
                    "owner": OWNER,
                    "status": "completed",
                    "strategy": "global",
                    "prompt": None,
                    "extractor": "offline",
                    "plan": "local",
                    "options": {"schema": SCHEMA, "refused": []},
                    "document_count": n,
                    "created_at": now,
                    "updated_at": now,
                    "completed_at": now,
                },
            )
        for start in range(0, n, step):
            documents, jobs, results = [], [], []
            for i in range(start, min(n, start + step)):
                key = first + i
                data, evidence, confidence = document_data(i)
                common = {"batch_id": batch_id, "created_at": now}
                documents.append(
                    {
                        **common,
                        "id": key,
                        "owner": OWNER,
                        "file_name": file_name(i),
                        "content_hash": f"{key:064x}",
                        "storage_key": f"bench/{key}.pdf",
                        "size_bytes": 48_000 + i % 5000,
                        "file_type": "pdf",
                        "mime_type": "application/pdf",
                        "status": "completed",
                        "page_count": 1,
                        "updated_at": now,
                    }
                )
                jobs.append(
                    {
                        **common,
                        "id": key,
                        "document_id": key,
                        "owner": OWNER,
                        "status": "completed",
                        "extractor": "offline",
                        "parser": "pdfium",
                        "started_at": now,
                        "finished_at": now,
                        "duration_ms": 12.5,
                        "updated_at": now,
                    }
                )
                results.append(
                    {
                        **common,
                        "id": key,
                        "job_id": key,
                        "document_id": key,
                        "data": data,
                        "evidence": evidence,
                        "schema": SCHEMA,
                        "confidence": confidence,
                        "flags": [],
                        "cache_key": f"{key:064x}",
                    }
                )
            with workspace.db.begin() as connection:
                connection.execute(insert(Document), documents)
                connection.execute(insert(ExtractionJob), jobs)
                connection.execute(insert(ExtractedData), results)
            total += len(documents)
    workspace.close()
    return total


def run_case(spec: dict[str, Any]) -> None:
    """Child side: set up, reset the peak mark, time the call, print one RESULT line."""
    timed, extra = prepare(spec)
    for library in WRITER_LIBRARIES:  # imported by every case alike, so no timed call pays it
        importlib.import_module(library)
    gc.collect()
    exact = reset_peak()
    start = rss_mb()
    profile = cProfile.Profile() if spec.get("profile") else None
    started = time.perf_counter()
    if profile is not None:
        profile.enable()
    rows = timed()
    if profile is not None:
        profile.disable()
    seconds = time.perf_counter() - started
    peak = peak_mb()
    path = Path(extra.pop("path"))
    size = path.stat().st_size / 2**20 if path.is_file() else None
    path.unlink(missing_ok=True)
    if profile is not None:
        print_profile(profile, f"{spec['case']} {spec.get('format')} {spec.get('mode')}")
    result = {"rows": rows, "seconds": seconds, "peak_mb": peak - start, "start_mb": start}
    print(RESULT_MARK + json.dumps({**result, **extra, "file_mb": size, "exact_peak": exact}))


def print_profile(profile: cProfile.Profile, title: str, limit: int = 30) -> None:
    for sort in ("tottime", "cumulative"):
        buffer = io.StringIO()
        pstats.Stats(profile, stream=buffer).sort_stats(sort).print_stats(limit)
        text = buffer.getvalue()
        start = text.find("   ncalls")
        print(f"\n-- cProfile: {title}, top {limit} by {sort} --")
        print(text[start:].rstrip() if start >= 0 else text.rstrip(), flush=True)


# ---------------------------------------------------------------------------------------------
# parent side


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one case in a fresh interpreter; its result, or ``{"error": ...}``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BATCHNB_")}
    command = [sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    result: dict[str, Any] | None = None
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK) :])
        else:
            print(line)
    if result is None:
        tail = "\n".join(done.stderr.strip().splitlines()[-6:])
        return {"error": f"exit {done.returncode}: {tail}"}
    return result


LABELS = {
    "to_csv": "pandas.to_csv",
    "to_parquet": "pandas.to_parquet (pyarrow)",
    "to_excel": 'pandas.to_excel("openpyxl")',
    "xlsxwriter": "xlsxwriter constant_memory",
    "batchnb": "batchnb write() (generator)",
    "db": "batchnb export() from SQLite",
    "records": "records generator alone",
    "flatten": "generator + rows, no file",
}
BASELINES = {"csv": ("to_csv",), "parquet": ("to_parquet",), "xlsx": ("to_excel", "xlsxwriter")}


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000, help="documents to export")
    parser.add_argument(
        "--flat-documents", type=int, default=10_000, help="smaller size for the flatness check"
    )
    parser.add_argument(
        "--quick", action="store_true", help="2,000 and 500 documents: checks the script itself"
    )
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated formats")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes")
    parser.add_argument(
        "--skip-to-excel-above",
        type=int,
        default=0,
        metavar="ROWS",
        help="skip pandas.to_excel past this many rows (0: never skip)",
    )
    parser.add_argument("--no-db", action="store_true", help="skip the database path")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile of batchnb write() per format and mode"
    )
    parser.add_argument(
        "--profile-documents", type=int, default=20_000, help="documents of the profiled runs"
    )
    parser.add_argument("--dir", default=None, help="parent folder of the temporary files")
    parser.add_argument(
        "--smoke", action="store_true", help="a few documents through every case: checks the script"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        run_case(json.loads(args.case))
        return 0
    if args.quick:
        args.documents, args.flat_documents = 2_000, 500
    if args.smoke:
        args.documents, args.flat_documents = 20, 10
        args.formats, args.modes = "csv,parquet,xlsx", "multi-row"
        args.profile, args.profile_documents = True, 20
    formats = [f for f in args.formats.split(",") if f]
    modes = [m for m in args.modes.split(",") if m]
    root = Path(tempfile.mkdtemp(prefix="batchnb-bench-export-", dir=args.dir)).resolve()
    try:
        results = run_all(args, formats, modes, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if args.smoke and any("error" in result for result in results) else 0


def run_all(
    args: argparse.Namespace, formats: list[str], modes: list[str], root: Path
) -> list[dict[str, Any]]:
    """Every case, each in its own process; the report; the results, failed ones included."""
    n, small = args.documents, args.flat_documents
    started_all = time.perf_counter()
    print(
        f"batchnb export benchmark: {n:,} documents (flatness at {small:,}), formats "
        f"{', '.join(formats)}, modes {', '.join(modes)}; Python {sys.version.split()[0]}; "
        f"{load_average()}; files under {root}",
        flush=True,
    )
    home = root / "workspace"
    db = not args.no_db and importlib.util.find_spec("batchnb.services.exports") is not None
    if not args.no_db and not db:
        print("database path skipped: batchnb.services.exports does not exist yet")
    results: list[dict[str, Any]] = []

    def measure(case: str, fmt: str | None, mode: str, docs: int, **more: Any) -> dict[str, Any]:
        spec = {"case": case, "format": fmt, "mode": mode, "n": docs, "dir": str(root), **more}
        result = {**spec, **child(spec)}
        results.append(result)
        if "error" in result:
            print(f"  {case} {fmt} {mode} {docs:,}: FAILED {result['error']}", flush=True)
        else:
            print(
                f"  {LABELS.get(case, case):<30} {fmt or '-':<8}{mode:<10}{docs:>9,} docs "
                f"{result['rows']:>9,} rows {result['seconds']:>8.2f} s "
                f"{result['peak_mb']:>+8.1f} MB",
                flush=True,
            )
        return result

    if db:
        seeded = measure(
            "seed", None, "normal", n, home=str(home), batches=[[1, small, 1], [2, n, small + 1]]
        )
        if "error" in seeded:
            db = False
    for mode in modes:
        measure("records", None, mode, n)
        measure("flatten", None, mode, n)
        for fmt in formats:
            for case in BASELINES.get(fmt, ()):
                rows_estimate = n * (5 if mode == "multi-row" else 1)
                if case == "to_excel" and 0 < args.skip_to_excel_above < rows_estimate:
                    print(f"  pandas.to_excel {mode} skipped (--skip-to-excel-above)")
                    continue
                measure(case, fmt, mode, n)
            measure("batchnb", fmt, mode, n)
            if db:
                measure("db", fmt, mode, n, home=str(home), batch=2)
    for mode in modes:
        for fmt in formats:
            measure("batchnb", fmt, mode, small)
            if db:
                measure("db", fmt, mode, small, home=str(home), batch=1)
    report(results, n, small, formats, modes)
    if args.profile:
        for mode in modes:
            for fmt in formats:
                measure("batchnb", fmt, mode, min(n, args.profile_documents), profile=True)
    minutes = (time.perf_counter() - started_all) / 60
    print(f"\nwhole run {minutes:.1f} min; {load_average()}")
    return results


def report(
    results: list[dict[str, Any]], n: int, small: int, formats: list[str], modes: list[str]
) -> None:
    def find(case: str, fmt: str | None, mode: str, docs: int = n) -> dict[str, Any] | None:
        for r in results:
            same = r["case"] == case and r["format"] == fmt and r["n"] == docs
            if same and r["mode"] == mode and "error" not in r and not r.get("profile"):
                return r
        return None

    print(f"\n== results: {n:,} documents " + "=" * 70)
    print(
        "net s = seconds minus the records generator alone (batchnb write() only: the baselines' "
        "data was built before timing); ratios use net s for write() and seconds for export().\n"
        "[bracketed]: batchnb's seconds against the baseline's build (records -> rows -> "
        "DataFrame, printed below) + write: the whole baseline path from the same records."
    )
    header = (
        f"{'case':<31}{'format':<9}{'mode':<10}{'rows':>9}{'seconds':>9}{'net s':>8}"
        f"{'peak MB':>9}{'file MB':>9}  ratio vs baseline"
    )
    print(header + "\n" + "-" * (len(header) + 14))
    aims: list[tuple[str, float | None, str, bool | None]] = []
    for mode in modes:
        source = find("records", None, mode)
        source_s = source["seconds"] if source else 0.0
        for case in ("records", "flatten"):
            r = find(case, None, mode)
            if r:
                print(
                    f"{LABELS[case]:<31}{'-':<9}{mode:<10}{r['rows']:>9,}{r['seconds']:>9.2f}"
                    f"{'':>8}{r['peak_mb']:>+9.1f}"
                )
        for fmt in formats:
            for case in (*BASELINES.get(fmt, ()), "batchnb", "db"):
                r = find(case, fmt, mode)
                if r is None:
                    continue
                net = r["seconds"] - source_s if case == "batchnb" else None
                timed = net if net is not None else r["seconds"]
                ratios = []
                for base in BASELINES.get(fmt, ()) if case in ("batchnb", "db") else ():
                    b = find(base, fmt, mode)
                    if b is None:
                        continue
                    ratio = timed / b["seconds"]
                    # The whole pandas path from the same records: rows, DataFrame, file.
                    whole = r["seconds"] / (b["seconds"] + b["build_s"])
                    ratios.append(f"{ratio:.2f}x {base} [{whole:.2f}x]")
                    aims.append(aim_for(case, base, fmt, mode, ratio))
                    if b["rows"] != r["rows"]:
                        ratios.append(f"ROWS DIFFER from {base} ({b['rows']:,})")
                size = f"{r['file_mb']:>9.1f}" if r.get("file_mb") is not None else f"{'':>9}"
                if not ratios and case in BASELINES.get(fmt, ()):
                    ratios.append("baseline")
                print(
                    f"{LABELS[case]:<31}{fmt:<9}{mode:<10}{r['rows']:>9,}{r['seconds']:>9.2f}"
                    f"{(f'{net:.2f}' if net is not None else '-'):>8}{r['peak_mb']:>+9.1f}"
                    f"{size}  {', '.join(ratios)}"
                )
        built = [find(c, f, mode) for f in formats for c in BASELINES.get(f, ())]
        for r in filter(None, built):
            what = f"DataFrame ({r['frame_mb']:.0f} MB deep)" if "frame_mb" in r else "row lists"
            print(
                f"  (input of {r['case']}, {mode}: {what} built from the records in "
                f"{r['build_s']:.2f} s; not timed above)"
            )
    for r in results:
        if "error" in r:
            print(f"FAILED: {r['case']} {r['format']} {r['mode']} {r['n']:,}: {r['error']}")
        elif not r.get("exact_peak", True):
            print(f"note: peak of {r['case']} {r['format']} not reset before timing (no /proc)")
    seed = next((r for r in results if r["case"] == "seed" and "error" not in r), None)
    if seed:
        print(f"(workspace seeded with {seed['rows']:,} documents in {seed['seconds']:.1f} s)")

    print(f"\n== memory flatness: peak MB at {small:,} vs {n:,} documents " + "=" * 40)
    for mode in modes:
        for fmt in formats:
            for case in ("batchnb", "db"):
                big, little = find(case, fmt, mode), find(case, fmt, mode, small)
                if big is None or little is None:
                    continue
                ratio = big["peak_mb"] / max(little["peak_mb"], 0.1)
                ok = ratio <= FLAT_AIM or big["peak_mb"] - little["peak_mb"] < FLAT_SLACK_MB
                print(
                    f"{LABELS[case]:<31}{fmt:<9}{mode:<10}{little['peak_mb']:>+9.1f} -> "
                    f"{big['peak_mb']:>+9.1f} MB  ({ratio:.2f}x)  {'met' if ok else 'NOT MET'}"
                )
                aims.append((f"memory flat, {LABELS[case]}, {fmt}, {mode}", ratio, "x", ok))

    print("\n== aims " + "=" * 90)
    print(
        f"CSV and Parquet within {CSV_PARQUET_AIM}x of pandas; Excel no slower than "
        f"pandas.to_excel and within {XLSXWRITER_AIM}x of xlsxwriter constant-memory; peak "
        f"memory flat {small:,} -> {n:,} documents (<= {FLAT_AIM}x or < {FLAT_SLACK_MB:.0f} MB "
        "growth). write() is judged on net s; export() from the database end to end."
    )
    for name, value, unit, ok in aims:
        shown = f"{value:.2f}{unit}" if value is not None else "-"
        print(f"  {name:<70}{shown:>8}  {'met' if ok else 'NOT MET'}")


def aim_for(
    case: str, base: str, fmt: str, mode: str, ratio: float
) -> tuple[str, float | None, str, bool | None]:
    limit = {"to_csv": CSV_PARQUET_AIM, "to_parquet": CSV_PARQUET_AIM, "to_excel": 1.0}.get(
        base, XLSXWRITER_AIM
    )
    return (f"{LABELS[case]}, {fmt}, {mode}: <= {limit}x {base}", ratio, "x", ratio <= limit)


if __name__ == "__main__":
    sys.exit(main())
