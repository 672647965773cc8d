"""A local HTTP server speaking the chat-completions protocol, for the openai extractor's tests.

It checks each request (path, bearer key, strict structured output, temperature 0) and answers
from a script of :class:`Reply` rows, then from its default reply; it records the requests and
the most requests it had in flight at once.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from batchnb.documents.parsed import Page, ParsedDocument
from batchnb.extract import schema_from_prompt

KEY = "test-key-0123456789"
MODEL = "qwen2.5-1.5b-instruct"
SCHEMA = schema_from_prompt(
    "invoice number, date, vendor name, total, paid?, line items (description, quantity, "
    "unit price)"
)
DOCUMENT = ParsedDocument(
    pages=(
        Page(1, "ACME Ltd\nInvoice No: INV-0042\nDate: 28/11/2022\n"),
        Page(
            2,
            "Description   Qty   Unit price\nWidget   2   $10.00\nGadget   1   $5.50\n"
            "Total:   $25.50\nPaid: yes\n",
        ),
    ),
    parser="test",
)
ANSWER = {
    "invoice_number": "INV-0042",
    "date": "28/11/2022",
    "vendor_name": "ACME Limited",  # not printed like this: stays ungrounded
    "total": "$25.50",
    "paid": "Yes",  # printed "yes": grounded ignoring case
    "line_items": [
        {"description": "Widget", "quantity": "2", "unit_price": "$10.00"},
        {"description": "Gadget", "quantity": "1", "unit_price": "$5.50"},
    ],
}


@dataclass
class Reply:
    """One scripted answer of the fake server."""

    status: int = 200
    content: str = json.dumps(ANSWER)
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""
    delay: float = 0.0


class ChatServer(ThreadingHTTPServer):
    """A chat-completions server that checks each request and answers from a script."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ChatHandler)
        self.script: list[Reply] = []
        self.default = Reply()
        self.requests: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_reply(self) -> Reply:
        with self.lock:
            return self.script.pop(0) if self.script else self.default


class _ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        with contextlib.suppress(OSError):  # the client gave up (timeout test)
            self._answer(self.server)

    def _answer(self, server: ChatServer) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.loads(raw)
        server.requests.append({"path": self.path, "body": body})
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        given = self.headers.get("Authorization", "")
        if given != f"Bearer {KEY}":
            # Like some servers, echo the key: the extractor must keep it out of its errors.
            message = f"Incorrect API key provided: {given.removeprefix('Bearer ')}"
            return self._send(401, {"error": {"message": message, "type": "invalid_request"}})
        format_ = body.get("response_format", {})
        if (
            body.get("temperature") != 0
            or format_.get("type") != "json_schema"
            or format_["json_schema"].get("strict") is not True
            or not body.get("messages")
        ):
            return self._send(400, {"error": {"message": "bad request body"}})
        reply = server.next_reply()
        with server.lock:
            server.active += 1
            server.max_active = max(server.max_active, server.active)
        time.sleep(reply.delay)
        with server.lock:  # before answering: the client may send its next request at once
            server.active -= 1
        if reply.status != 200:
            return self._send(reply.status, {"error": {"message": reply.error}}, reply.headers)
        self._send(
            200,
            {
                "id": f"chatcmpl-{len(server.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
            },
        )

    def _send(
        self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


@contextlib.contextmanager
def serving() -> Iterator[ChatServer]:
    """A running :class:`ChatServer`, shut down on exit."""
    chat = ChatServer()
    thread = threading.Thread(target=chat.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield chat
    chat.shutdown()
    chat.server_close()
    thread.join()
