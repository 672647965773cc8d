"""The ``openai`` extractor: any OpenAI-compatible chat-completions server, chosen by base URL.

OpenAI, Azure OpenAI, Ollama (``http://localhost:11434/v1``), vLLM and the llama.cpp server all
speak ``POST {base_url}/chat/completions``. The model is asked for structured output with a
string-only schema (see :mod:`batchnb.extract.llm_prompt`): it copies each value as printed,
and this module reads dates, amounts and numbers from those strings and grounds each one by
finding it in the page texts, so values carry a page and span like the offline extractor's.

Requests are retried on 429, 5xx, timeouts and connection errors with exponential backoff
(``Retry-After`` wins when the server sends it); a reply that is not valid JSON gets one repair
request. A process-wide semaphore per server caps the requests in flight, so worker threads and
notebook cells together never exceed ``openai_concurrency``. The API key comes from settings
only; it is never logged, stored or put in an error message.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from batchnb.config import Settings, load_settings
from batchnb.documents.parsed import Page, ParsedDocument
from batchnb.errors import ConfigurationError, ExtractorError, MissingDependencyError
from batchnb.extract.base import ExtractedValue, ExtractionResult, Extractor, JSONValue
from batchnb.extract.llm_prompt import (
    DEFAULT_MAX_INPUT_CHARS,
    build_messages,
    repair_messages,
    response_format,
)
from batchnb.extract.schema import Field, Schema
from batchnb.extract.values import (
    DateOrder,
    date_order_hint,
    find_boolean,
    parse_date,
    parse_money,
    parse_number,
)

if TYPE_CHECKING:
    import httpx

OPENAI_BASE_URL = "https://api.openai.com/v1"
EXACT_CONFIDENCE = 0.9
"""The value was found in the page text exactly as the model copied it."""
LOOSE_CONFIDENCE = 0.8
"""Found, but only ignoring case and whitespace."""
UNGROUNDED_CONFIDENCE = 0.4
"""Not found in the text: the model may have reformatted or invented it."""
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 120.0
_MISSING_KEY = (
    "set BATCHNB_OPENAI_API_KEY or BATCHNB_OPENAI_BASE_URL for a local server "
    "(Ollama, vLLM, llama.cpp)"
)

_LIMITS: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_LIMITS_LOCK = threading.Lock()


def request_limit(base_url: str, concurrency: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore shared by every extractor talking to ``base_url``."""
    with _LIMITS_LOCK:
        key = (base_url, concurrency)
        if key not in _LIMITS:
            _LIMITS[key] = threading.BoundedSemaphore(concurrency)
        return _LIMITS[key]


class _BadReply(Exception):
    """The model's reply is not a JSON object shaped like the schema."""


class OpenAICompatibleExtractor:
    """Extracts with a model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Parameters
    ----------
    base_url:
        The server's API root, e.g. ``https://api.openai.com/v1`` or ``http://localhost:11434/v1``.
    api_key:
        Sent as a bearer token (and as ``api-key`` to ``*.azure.com``); empty for local servers.
    model:
        Model name as the server knows it; part of :attr:`version`, hence of the cache key.
    timeout:
        Seconds to wait for one reply before the request counts as failed and is retried.
    max_retries:
        Retries after the first attempt on 429, 5xx, timeouts and connection errors.
    concurrency:
        Most requests in flight to ``base_url`` in this process, across all extractors.
    max_input_chars:
        Document characters sent; longer documents are cut with a note to the model.
    backoff_seconds:
        First retry delay; doubled on each retry (with jitter), at most 30 s.
    sleep:
        Waits between retries; tests pass a recorder.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str = OPENAI_BASE_URL,
        api_key: str = "",
        model: str = "gpt-4o-mini",
        timeout: float = 60.0,
        max_retries: int = 3,
        concurrency: int = 4,
        *,
        max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigurationError(
                f"BATCHNB_OPENAI_BASE_URL must be an http(s) URL such as {OPENAI_BASE_URL} or "
                f"http://localhost:11434/v1, got {base_url!r}"
            )
        if not model:
            raise ConfigurationError("set BATCHNB_OPENAI_MODEL to the model the server serves")
        if timeout <= 0:
            raise ConfigurationError("BATCHNB_OPENAI_TIMEOUT_SECONDS must be positive")
        if concurrency < 1:
            raise ConfigurationError("BATCHNB_OPENAI_CONCURRENCY must be at least 1")
        if max_retries < 0 or max_input_chars < 1:
            raise ConfigurationError("max_retries must be >= 0 and max_input_chars >= 1")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.version = f"1:{model}"
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.max_input_chars = max_input_chars
        self.backoff_seconds = backoff_seconds
        self._api_key = api_key
        self._sleep = sleep
        self._limit = request_limit(self.base_url, concurrency)
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAICompatibleExtractor(base_url={self.base_url!r}, model={self.model!r})"

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> OpenAICompatibleExtractor:
        """An extractor configured by the ``openai_*`` settings (``load_settings()`` by default)."""
        settings = load_settings() if settings is None else settings
        return cls(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            model=settings.openai_model,
            timeout=settings.openai_timeout_seconds,
            concurrency=settings.openai_concurrency,
        )

    def extract(self, document: ParsedDocument, schema: Schema) -> ExtractionResult:
        """Ask the model for the schema's fields, then type and ground each value.

        Raises
        ------
        ConfigurationError
            No API key for api.openai.com, or httpx is not installed.
        ExtractorError
            The server refused the request, kept failing, or the model's reply stayed invalid
            after one repair request.
        """
        if not self._api_key and urlsplit(self.base_url).hostname == "api.openai.com":
            raise ConfigurationError(_MISSING_KEY)
        messages = build_messages(document, schema, self.max_input_chars)
        reply = self._complete(messages, schema)
        try:
            data = read_reply(reply, schema)
        except _BadReply as exc:
            reply = self._complete(repair_messages(messages, reply, str(exc), schema), schema)
            try:
                data = read_reply(reply, schema)
            except _BadReply as again:
                raise ExtractorError(
                    f"model {self.model!r} at {self.base_url} did not return valid JSON matching "
                    f"the schema, even after a repair request: {again}; the reply began "
                    f"{reply[:200]!r}"
                ) from None
        return build_result(data, document, schema, self.name)

    def close(self) -> None:
        """Close the HTTP connections (a new client is made if the extractor is used again)."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                try:
                    import httpx
                except ImportError:
                    raise MissingDependencyError("httpx", "llm", "the openai extractor") from None
                headers = {"Content-Type": "application/json"}
                if self._api_key:
                    headers["Authorization"] = f"Bearer {self._api_key}"
                    if (urlsplit(self.base_url).hostname or "").endswith(".azure.com"):
                        headers["api-key"] = self._api_key
                self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(self.timeout))
            return self._client

    def _complete(self, messages: list[dict[str, str]], schema: Schema) -> str:
        """POST one chat completion and return the assistant's text."""
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "response_format": response_format(schema),
        }
        reply = self._post(body)
        try:
            message = reply["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise ExtractorError(
                f"{self.url} replied without choices[0].message; is it an OpenAI-compatible "
                "chat-completions endpoint?"
            ) from None
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, str):
            refusal = message.get("refusal") if isinstance(message, Mapping) else None
            raise ExtractorError(
                f"model {self.model!r} returned no content"
                + (f" (refusal: {self._scrub(str(refusal))})" if refusal else "")
            )
        return content

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST with retries on 429, 5xx, timeouts and connection errors; the reply's JSON."""
        client = self._http()
        import httpx

        attempts = self.max_retries + 1
        failure, hint = "", ""
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                with self._limit:
                    response = client.post(self.url, json=body)
            except httpx.TimeoutException:
                failure = f"no reply within {self.timeout:g} s"
                hint = "raise BATCHNB_OPENAI_TIMEOUT_SECONDS or use a faster model or server"
            except httpx.TransportError as exc:
                failure = f"cannot reach the server ({type(exc).__name__}: {exc})"
                hint = "check BATCHNB_OPENAI_BASE_URL and that the server is running"
            else:
                status = response.status_code
                if response.is_success:
                    return self._json(response)
                failure = f"HTTP {status}: {self._server_message(response)}"
                if status != 429 and status < 500:
                    raise ExtractorError(
                        f"{self.url} refused the request with {failure}{_status_hint(status)}"
                    )
                hint = "the server is overloaded or failing; try again later"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt < attempts - 1:
                self._sleep(self._delay(attempt, retry_after))
        raise ExtractorError(
            f"{self.url} failed after {attempts} attempt{'s' if attempts > 1 else ''}: "
            f"{failure}; {hint}"
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_SECONDS)
        delay = min(self.backoff_seconds * 2**attempt, MAX_BACKOFF_SECONDS)
        return delay * (0.5 + random.random() / 2)  # jitter: threads do not retry in lockstep

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ExtractorError(
                f"{self.url} replied with something other than a JSON object: "
                f"{self._scrub(response.text[:200])!r}"
            )
        return data

    def _server_message(self, response: httpx.Response) -> str:
        """The error message the server sent (OpenAI, Ollama and vLLM shapes), scrubbed."""
        message: Any = response.text
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            error = data.get("error", data.get("message", data.get("detail")))
            if isinstance(error, dict):
                error = error.get("message", error)
            if error:
                message = error
        return self._scrub(" ".join(str(message).split())[:500]) or response.reason_phrase

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def extractor_from_settings() -> Extractor:
    """The registry's factory: an ``openai`` extractor from the current settings."""
    return OpenAICompatibleExtractor.from_settings()


def register(register_extractor: Callable[[str, Callable[[], Extractor]], None]) -> None:
    """Entry point of the ``batchnb.extractors`` group: registers ``openai``."""
    register_extractor(OpenAICompatibleExtractor.name, extractor_from_settings)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), if usable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "; check BATCHNB_OPENAI_API_KEY"
    if status == 404:
        return "; check BATCHNB_OPENAI_BASE_URL and BATCHNB_OPENAI_MODEL"
    return ""


def read_reply(reply: str, schema: Schema) -> dict[str, Any]:
    """The model's JSON object; :class:`_BadReply` says what is wrong with it otherwise."""
    text = reply.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    if fenced:  # small models wrap JSON in a code fence even when told not to
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _BadReply(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _BadReply(f"expected a JSON object, got {type(data).__name__}")
    for field in schema.fields:
        value = data.get(field.name)
        if field.type == "array":
            if value is not None and not (
                isinstance(value, list) and all(isinstance(row, dict) for row in value)
            ):
                raise _BadReply(f"{field.name!r} must be a list of objects")
        elif isinstance(value, dict | list):
            raise _BadReply(f"{field.name!r} must be a string or null")
    return data


@dataclass(frozen=True)
class _Span:
    page: int
    start: int
    end: int
    exact: bool


def build_result(
    data: Mapping[str, Any], document: ParsedDocument, schema: Schema, extractor: str
) -> ExtractionResult:
    """Typed, grounded values from the model's strings; unreadable values become notes."""
    order = date_order_hint(document.text)
    notes: list[str] = []
    values: dict[str, ExtractedValue | None] = {}
    for field in schema.fields:
        if field.type == "array":
            values[field.name] = _array_value(field, data.get(field.name), document, order, notes)
        else:
            found, _ = _scalar_value(field, data.get(field.name), document, order, notes)
            values[field.name] = found
    return ExtractionResult(values=values, extractor=extractor, notes=tuple(notes))


def _scalar_value(
    field: Field,
    given: Any,
    document: ParsedDocument,
    order: DateOrder | None,
    notes: list[str],
    after: tuple[int, int] = (1, 0),
    where: str = "",
) -> tuple[ExtractedValue | None, _Span | None]:
    raw = _as_text(given)
    if raw is None:
        return None, None
    if isinstance(given, bool) and field.type == "boolean":
        value: JSONValue = given
    else:
        value = typed_value(field, raw, order)
    if value is None:
        notes.append(f"could not read a {field.type} from {raw!r} for {where}{field.name!r}")
        return None, None
    span = ground(raw, document.pages, after)
    if span is None:
        return ExtractedValue(value=value, raw=raw, confidence=UNGROUNDED_CONFIDENCE), None
    page_text = document.pages[span.page - 1].text
    return (
        ExtractedValue(
            value=value,
            raw=page_text[span.start : span.end],
            page=span.page,
            start=span.start,
            end=span.end,
            confidence=EXACT_CONFIDENCE if span.exact else LOOSE_CONFIDENCE,
        ),
        span,
    )


def _array_value(
    field: Field,
    given: Any,
    document: ParsedDocument,
    order: DateOrder | None,
    notes: list[str],
) -> ExtractedValue | None:
    """Rows of typed cells; the evidence spans the grounded cells on the first one's page."""
    rows: list[dict[str, JSONValue]] = []
    cells: list[ExtractedValue] = []
    spans: list[_Span] = []
    cursor = (1, 0)
    for number, given_row in enumerate(given or (), start=1):
        row: dict[str, JSONValue] = {}
        for sub in field.fields:
            where = f"{field.name}[{number}]."
            found, span = _scalar_value(
                sub, given_row.get(sub.name), document, order, notes, cursor, where
            )
            row[sub.name] = None if found is None else found.value
            if found is not None:
                cells.append(found)
            if span is not None:
                spans.append(span)
                cursor = (span.page, span.end)  # rows follow each other down the page
        if any(value is not None for value in row.values()):
            rows.append(row)
    if not rows:
        return None
    confidence = sum(cell.confidence or 0.0 for cell in cells) / len(cells)
    if not spans:
        return ExtractedValue(value=list(rows), confidence=round(confidence, 3))
    page = spans[0].page
    start = min(span.start for span in spans if span.page == page)
    end = max(span.end for span in spans if span.page == page)
    return ExtractedValue(
        value=list(rows),
        raw=document.pages[page - 1].text[start:end],
        page=page,
        start=start,
        end=end,
        confidence=round(confidence, 3),
    )


def typed_value(field: Field, raw: str, order: DateOrder | None = None) -> JSONValue:
    """The value of ``raw`` for the field's type, or ``None`` when it cannot be read as one."""
    if field.type == "date":
        return parse_date(raw, order)
    if field.type == "money":
        return parse_money(raw)
    if field.type == "number":
        return parse_number(raw)
    if field.type == "boolean":
        match = find_boolean(raw)
        return None if match is None else match.value
    return raw


def ground(raw: str, pages: tuple[Page, ...], after: tuple[int, int] = (1, 0)) -> _Span | None:
    """Where ``raw`` is printed: exactly first, then ignoring case and runs of whitespace.

    The search starts at ``after`` (page, offset) and then covers the whole document, so table
    cells are found in reading order rather than at an earlier, unrelated occurrence.
    """
    words = raw.split()
    if not words:
        return None
    loose = re.compile(r"\s+".join(re.escape(word) for word in words), re.IGNORECASE)
    for exact in (True, False):
        for page, offset in _search_order(pages, after):
            if exact:
                start = page.text.find(raw, offset)
                if start >= 0:
                    return _Span(page.number, start, start + len(raw), True)
            else:
                match = loose.search(page.text, offset)
                if match:
                    return _Span(page.number, match.start(), match.end(), False)
    return None


def _search_order(pages: tuple[Page, ...], after: tuple[int, int]) -> list[tuple[Page, int]]:
    page_number, offset = after
    order = [(page, offset if page.number == page_number else 0) for page in pages]
    later = [(page, start) for page, start in order if page.number >= page_number]
    return later + [(page, 0) for page in pages if page.number <= page_number]


def _as_text(given: Any) -> str | None:
    """The model's value as a string, whatever JSON type it used; ``None`` for blank."""
    if given is None:
        return None
    if isinstance(given, bool):
        return "true" if given else "false"
    text = given if isinstance(given, str) else json.dumps(given)
    text = text.strip()
    return text or None
