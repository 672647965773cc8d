"""The openai extractor against a real local HTTP server speaking the chat-completions protocol."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from batchnb.config import load_settings
from batchnb.documents.parsed import Page, ParsedDocument
from batchnb.errors import ConfigurationError, ExtractorError, MissingDependencyError
from batchnb.extract import ExtractionResult, get_extractor, schema_from_prompt
from batchnb.extract.llm_prompt import document_text, response_schema
from batchnb.extract.openai_compat import (
    EXACT_CONFIDENCE,
    LOOSE_CONFIDENCE,
    UNGROUNDED_CONFIDENCE,
    OpenAICompatibleExtractor,
    parse_retry_after,
)

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


@pytest.fixture
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    thread = threading.Thread(target=chat.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield chat
    chat.shutdown()
    chat.server_close()
    thread.join()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make(server: ChatServer, sleeps: list[float], **options: Any) -> OpenAICompatibleExtractor:
    options = {"api_key": KEY, "model": MODEL, "timeout": 5.0, "max_retries": 2} | options
    return OpenAICompatibleExtractor(server.url, sleep=sleeps.append, **options)


def assert_grounded(result: ExtractionResult) -> None:
    for name, found in result.values.items():
        if found is not None and found.page is not None:
            assert DOCUMENT.pages[found.page - 1].text[found.start : found.end] == found.raw, name


def test_values_are_typed_and_grounded(server: ChatServer, sleeps: list[float]) -> None:
    result = make(server, sleeps).extract(DOCUMENT, SCHEMA)
    assert result.extractor == "openai"
    assert result.data() == {
        "invoice_number": "INV-0042",
        "date": "2022-11-28",
        "vendor_name": "ACME Limited",
        "total": {"amount": 25.5, "currency": "USD"},
        "paid": True,
        "line_items": [
            {
                "description": "Widget",
                "quantity": 2.0,
                "unit_price": {"amount": 10.0, "currency": "USD"},
            },
            {
                "description": "Gadget",
                "quantity": 1.0,
                "unit_price": {"amount": 5.5, "currency": "USD"},
            },
        ],
    }
    assert_grounded(result)
    values = result.values
    number = values["invoice_number"]
    assert number is not None and (number.page, number.raw) == (1, "INV-0042")
    assert number.confidence == EXACT_CONFIDENCE
    total = values["total"]
    assert total is not None and (total.page, total.raw) == (2, "$25.50")
    paid = values["paid"]
    assert paid is not None and (paid.raw, paid.confidence) == ("yes", LOOSE_CONFIDENCE)
    vendor = values["vendor_name"]
    assert vendor is not None and not vendor.grounded
    assert vendor.confidence == UNGROUNDED_CONFIDENCE
    items = values["line_items"]
    assert items is not None and items.page == 2 and items.raw is not None
    assert items.raw.startswith("Widget") and items.raw.endswith("$5.50")
    assert len(server.requests) == 1 and sleeps == []


def test_request_carries_the_string_only_schema_and_the_pages(
    server: ChatServer, sleeps: list[float]
) -> None:
    make(server, sleeps).extract(DOCUMENT, SCHEMA)
    body = server.requests[0]["body"]
    assert body["model"] == MODEL
    schema = body["response_format"]["json_schema"]
    assert schema["name"] == "extraction"
    assert schema["schema"] == response_schema(SCHEMA)
    assert schema["schema"]["required"] == list(SCHEMA.names)
    assert schema["schema"]["additionalProperties"] is False
    assert schema["schema"]["properties"]["date"]["type"] == ["string", "null"]
    items = schema["schema"]["properties"]["line_items"]
    assert items["type"] == "array"
    assert items["items"]["properties"]["quantity"]["type"] == ["string", "null"]
    system, user = body["messages"]
    assert system["role"] == "system" and '"line_items"' in system["content"]
    assert "--- page 1 ---" in user["content"] and "--- page 2 ---" in user["content"]


def test_long_documents_are_cut_with_a_note() -> None:
    text = document_text(DOCUMENT, max_input_chars=40)
    assert text.startswith("--- page 1 ---\nACME Ltd")
    assert "[document truncated: the first 40 of" in text
    assert document_text(DOCUMENT) == "--- page 1 ---\n" + DOCUMENT.pages[0].text + (
        "\n--- page 2 ---\n" + DOCUMENT.pages[1].text
    )


def test_429_waits_as_told_by_retry_after(server: ChatServer, sleeps: list[float]) -> None:
    server.script = [Reply(429, error="slow down", headers={"Retry-After": "2"})]
    result = make(server, sleeps).extract(DOCUMENT, SCHEMA)
    assert result.data()["invoice_number"] == "INV-0042"
    assert sleeps == [2.0]
    assert len(server.requests) == 2


def test_500_is_retried_with_backoff(server: ChatServer, sleeps: list[float]) -> None:
    server.script = [Reply(500, error="boom"), Reply(503, error="loading model")]
    result = make(server, sleeps, backoff_seconds=0.5).extract(DOCUMENT, SCHEMA)
    assert result.data()["invoice_number"] == "INV-0042"
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0  # doubled, with jitter


def test_persistent_5xx_gives_up_with_the_server_message(
    server: ChatServer, sleeps: list[float]
) -> None:
    server.default = Reply(502, error="upstream gone")
    with pytest.raises(ExtractorError, match=r"after 3 attempts: HTTP 502: upstream gone"):
        make(server, sleeps).extract(DOCUMENT, SCHEMA)
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_malformed_json_gets_one_repair_request(server: ChatServer, sleeps: list[float]) -> None:
    bad = '{"invoice_number": "INV-0042", "date": '
    server.script = [Reply(content=bad), Reply(content=f"```json\n{json.dumps(ANSWER)}\n```")]
    result = make(server, sleeps).extract(DOCUMENT, SCHEMA)
    assert result.data()["total"] == {"amount": 25.5, "currency": "USD"}
    assert len(server.requests) == 2
    repair = server.requests[1]["body"]["messages"]
    assert repair[:2] == server.requests[0]["body"]["messages"]
    assert repair[2] == {"role": "assistant", "content": bad}
    assert repair[3]["role"] == "user" and "not a valid JSON object" in repair[3]["content"]
    assert '"line_items"' in repair[3]["content"]


def test_still_malformed_after_repair_is_an_error(server: ChatServer, sleeps: list[float]) -> None:
    server.default = Reply(content='["not", "an", "object"]')
    with pytest.raises(ExtractorError, match="even after a repair request: expected a JSON obj"):
        make(server, sleeps).extract(DOCUMENT, SCHEMA)
    assert len(server.requests) == 2


def test_slow_replies_time_out_are_retried_then_fail_clearly(
    server: ChatServer, sleeps: list[float]
) -> None:
    server.default = Reply(delay=1.0)
    extractor = make(server, sleeps, timeout=0.2, max_retries=1)
    started = time.monotonic()
    with pytest.raises(ExtractorError) as caught:
        extractor.extract(DOCUMENT, SCHEMA)
    assert time.monotonic() - started < 0.9  # each attempt stopped at the timeout
    message = str(caught.value)
    assert "after 2 attempts: no reply within 0.2 s" in message
    assert "BATCHNB_OPENAI_TIMEOUT_SECONDS" in message
    assert len(server.requests) == 2 and len(sleeps) == 1


def test_401_is_not_retried_and_hides_the_key(server: ChatServer, sleeps: list[float]) -> None:
    wrong = "sk-wrong-secret-987654"
    with pytest.raises(ExtractorError) as caught:
        make(server, sleeps, api_key=wrong).extract(DOCUMENT, SCHEMA)
    message = str(caught.value)
    assert "HTTP 401" in message and "Incorrect API key provided" in message
    assert "BATCHNB_OPENAI_API_KEY" in message
    assert wrong not in message and wrong not in repr(caught.value.__context__)
    assert len(server.requests) == 1 and sleeps == []


def test_404_names_the_settings_to_check(server: ChatServer, sleeps: list[float]) -> None:
    extractor = OpenAICompatibleExtractor(server.url + "/wrong", KEY, MODEL, sleep=sleeps.append)
    with pytest.raises(ExtractorError, match=r"HTTP 404.*BATCHNB_OPENAI_BASE_URL"):
        extractor.extract(DOCUMENT, SCHEMA)


def test_unreachable_server_is_retried_then_fails(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    extractor = OpenAICompatibleExtractor(f"http://127.0.0.1:{port}/v1", sleep=sleeps.append)
    with pytest.raises(ExtractorError, match="after 4 attempts: cannot reach the server"):
        extractor.extract(DOCUMENT, SCHEMA)
    assert len(sleeps) == 3


def test_concurrency_cap_is_shared_by_the_whole_process(server: ChatServer) -> None:
    server.default = Reply(delay=0.2)

    def run(_: int) -> ExtractionResult:
        # A new extractor per call, as the registry hands out: the cap still holds.
        extractor = OpenAICompatibleExtractor(server.url, KEY, MODEL, concurrency=2)
        return extractor.extract(DOCUMENT, SCHEMA)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run, range(6)))
    assert all(result.data()["paid"] is True for result in results)
    assert len(server.requests) == 6
    assert server.max_active == 2


def test_registry_builds_it_from_settings(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHNB_OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("BATCHNB_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("BATCHNB_OPENAI_MODEL", MODEL)
    monkeypatch.setenv("BATCHNB_OPENAI_TIMEOUT_SECONDS", "7.5")
    monkeypatch.setenv("BATCHNB_OPENAI_CONCURRENCY", "3")
    extractor = get_extractor("openai")
    assert isinstance(extractor, OpenAICompatibleExtractor)
    assert (extractor.base_url, extractor.model, extractor.version) == (
        server.url,
        MODEL,
        f"1:{MODEL}",
    )
    assert (extractor.timeout, extractor.concurrency) == (7.5, 3)
    assert KEY not in repr(extractor)
    assert extractor.extract(DOCUMENT, SCHEMA).data()["invoice_number"] == "INV-0042"


def test_missing_key_for_openai_fails_at_extract_time_only() -> None:
    extractor = get_extractor("openai")  # defaults: api.openai.com and no key
    with pytest.raises(ConfigurationError, match="set BATCHNB_OPENAI_API_KEY or BATCHNB_OPENAI"):
        extractor.extract(DOCUMENT, SCHEMA)


def test_missing_httpx_names_the_extra(
    server: ChatServer, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'batchnb\[llm\]'"):
        make(server, sleeps).extract(DOCUMENT, SCHEMA)


def test_settings_rows_and_the_key_stays_out_of_repr() -> None:
    settings = load_settings()
    assert settings.openai_base_url == "https://api.openai.com/v1"
    assert (settings.openai_model, settings.openai_timeout_seconds) == ("gpt-4o-mini", 60.0)
    assert (settings.openai_api_key, settings.openai_concurrency) == ("", 4)
    assert KEY not in repr(load_settings(openai_api_key=KEY))


@pytest.mark.parametrize(
    ("header", "seconds"), [(None, None), ("3", 3.0), ("-1", 0.0), ("soon", None)]
)
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_as_http_date() -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    seconds = parse_retry_after(when)
    assert seconds is not None and 25 <= seconds <= 31
