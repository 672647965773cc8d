"""The openai extractor built per document against one pooled instance, measured in the same run.

A local threaded HTTP server answers every chat completion at once with the same reply (HTTP/1.1,
keep-alive), so what is timed is batchnb's side: building the extractor, the HTTP client and its
connections, the request, reading, typing and grounding the reply. Two ways of running the same
documents take turns, ``--repeat`` times each:

1. before: a new extractor for every document, never closed (what the registry handed out per
   document before extractors had a lifecycle): a new httpx client and connection each time;
2. after: one instance from an :class:`~batchnb.extract.ExtractorPool`, shared by the worker
   threads and closed at the end.

It prints documents per second (medians) and the ratio after / before.

Run: ``.venv/bin/python benchmarks/openai_extractor.py [--documents 300] [--threads 2] [--smoke]``
(``--smoke``: 4 documents, one run of each way; checks the script, its figures mean nothing.)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from batchnb.config import Settings, load_settings
from batchnb.documents.parsed import Page, ParsedDocument
from batchnb.extract import Extractor, ExtractorPool, OpenAICompatibleExtractor, schema_from_prompt

PROMPT = "invoice number, date, vendor name, total, line items (description, quantity, amount)"
SCHEMA = schema_from_prompt(PROMPT)


def make_document(number: int) -> ParsedDocument:
    """A small invoice whose values the canned reply copies, so grounding finds them."""
    text = (
        f"Northwind Components {number % 17} GmbH\nInvoice Number: NW-{number:06d}\n"
        "Date: 2024-03-15\nDescription   Qty   Amount\nWidget   2   $20.00\n"
        "Gadget   1   $5.50\nTotal: $25.50\n"
    )
    return ParsedDocument(pages=(Page(1, text),), parser="bench")


REPLY = {
    "invoice_number": "NW-000001",
    "date": "2024-03-15",
    "vendor_name": "Northwind Components 1 GmbH",
    "total": "$25.50",
    "line_items": [
        {"description": "Widget", "quantity": "2", "amount": "$20.00"},
        {"description": "Gadget", "quantity": "1", "amount": "$5.50"},
    ],
}
COMPLETION = json.dumps(
    {"choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps(REPLY)}}]}
).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a reused client keeps its connection
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(COMPLETION)))
        self.end_headers()
        self.wfile.write(COMPLETION)


@contextmanager
def chat_server() -> Iterator[str]:
    """A running chat-completions server; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_documents(
    documents: list[ParsedDocument], threads: int, extractor_for: Callable[[], Extractor]
) -> None:
    """Extract every document on ``threads`` threads, asking ``extractor_for`` each time."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for result in pool.map(lambda d: extractor_for().extract(d, SCHEMA), documents):
            if result.data()["total"] != {"amount": 25.5, "currency": "USD"}:
                raise AssertionError(f"unexpected result: {result.data()}")


def before(settings: Settings, documents: list[ParsedDocument], threads: int) -> None:
    """A new extractor per document, never closed."""
    run_documents(documents, threads, lambda: OpenAICompatibleExtractor.from_settings(settings))


def after(settings: Settings, documents: list[ParsedDocument], threads: int) -> None:
    """One pooled extractor for every document and thread, closed at the end."""
    with ExtractorPool(settings) as pool:
        run_documents(documents, threads, lambda: pool.get("openai"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300, help="documents per run")
    parser.add_argument("--threads", type=int, default=2, help="worker threads")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each way (median)")
    parser.add_argument(
        "--smoke", action="store_true", help="4 documents, one run each: checks the script itself"
    )
    args = parser.parse_args()
    if args.smoke:
        args.documents, args.repeat = 4, 1
    for name in [name for name in os.environ if name.startswith("BATCHNB_")]:
        del os.environ[name]
    documents = [make_document(n) for n in range(args.documents)]
    with tempfile.TemporaryDirectory(prefix="batchnb-bench-") as home, chat_server() as url:
        settings = load_settings(
            home=home, openai_base_url=url, openai_model="bench", openai_concurrency=args.threads
        )
        print(
            f"{args.documents} documents, {args.threads} threads, {args.repeat} runs each; "
            f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}"
        )
        after(settings, documents[:10], args.threads)  # warm up: imports, patterns, server
        samples: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(args.repeat):
            for name, way in (("before", before), ("after", after)):
                gc.collect()  # the unclosed clients of the last run do not bill this one
                started = time.perf_counter()
                way(settings, documents, args.threads)
                samples[name].append(args.documents / (time.perf_counter() - started))
    rates = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{'way':<52}{'docs/s':>10}{'vs before':>11}")
    print(f"{'1. before: new extractor per document, never closed':<52}{rates['before']:>10.0f}")
    print(
        f"{'2. after: one pooled extractor, closed at the end':<52}{rates['after']:>10.0f}"
        f"{rates['after'] / rates['before']:>10.2f}x"
    )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
