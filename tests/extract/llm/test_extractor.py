"""The openai extractor against a real local HTTP server speaking the chat-completions protocol."""

from __future__ import annotations

import json
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from batchnb.config import load_settings
from batchnb.errors import ConfigurationError, ExtractorError, MissingDependencyError
from batchnb.extract import ExtractionResult, get_extractor
from batchnb.extract.llm import (
    EXACT_CONFIDENCE,
    LOOSE_CONFIDENCE,
    UNGROUNDED_CONFIDENCE,
    OpenAICompatibleExtractor,
    document_text,
    parse_retry_after,
    response_schema,
)
from tests.extract.llm.chat_server import (
    ANSWER,
    DOCUMENT,
    KEY,
    MODEL,
    SCHEMA,
    ChatServer,
    Reply,
)


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
        # A new extractor per call (as get_extractor() builds them): the cap still holds.
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


def _completion(content: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


def test_mock_transport_stands_in_for_the_server() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_completion(json.dumps(ANSWER)))

    extractor = OpenAICompatibleExtractor(model=MODEL, transport=httpx.MockTransport(handler))
    # No API key needed: with a transport given, nothing leaves the process.
    result = extractor.extract(DOCUMENT, SCHEMA)
    assert result.data()["total"] == {"amount": 25.5, "currency": "USD"}
    assert str(seen[0].url) == "https://api.openai.com/v1/chat/completions"
    body = json.loads(seen[0].content)
    assert body["model"] == MODEL and body["response_format"]["json_schema"]["strict"] is True
    extractor.close()


def test_an_injected_client_is_used_and_left_open(server: ChatServer) -> None:
    with httpx.Client() as client:
        extractor = OpenAICompatibleExtractor(server.url, KEY, MODEL, client=client)
        assert extractor.extract(DOCUMENT, SCHEMA).data()["invoice_number"] == "INV-0042"
        extractor.close()
        assert not client.is_closed  # the caller's client stays the caller's
    assert server.requests[0]["body"]["model"] == MODEL
    with pytest.raises(ConfigurationError, match="not both"):
        OpenAICompatibleExtractor(client=client, transport=httpx.MockTransport(lambda r: r))


def test_one_http_client_for_the_extractors_lifetime(
    server: ChatServer, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[httpx.Client] = []

    class CountingClient(httpx.Client):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            made.append(self)

    monkeypatch.setattr(httpx, "Client", CountingClient)
    extractor = make(server, sleeps)
    for _ in range(3):
        extractor.extract(DOCUMENT, SCHEMA)
    assert len(made) == 1 and not made[0].is_closed
    extractor.close()
    assert made[0].is_closed
    extractor.extract(DOCUMENT, SCHEMA)  # used again after close: a new client
    assert len(made) == 2
    extractor.close()


def test_extractor_options_reach_the_openai_extractor(server: ChatServer) -> None:
    settings = load_settings(
        openai_base_url=server.url,
        openai_api_key=KEY,
        openai_model=MODEL,
        extractor_options={"openai": {"max_retries": 0, "max_input_chars": 500}},
    )
    extractor = OpenAICompatibleExtractor.from_settings(settings)
    assert (extractor.max_retries, extractor.max_input_chars) == (0, 500)
    unknown = load_settings(extractor_options={"openai": {"temperature": 1}})
    with pytest.raises(ConfigurationError, match=r"unknown option.*temperature"):
        OpenAICompatibleExtractor.from_settings(unknown)
