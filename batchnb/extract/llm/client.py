"""HTTP to an OpenAI-compatible ``/chat/completions`` endpoint: retries, backoff and a cap.

Requests are retried on 429, 5xx, timeouts and connection errors with exponential backoff
(``Retry-After`` wins when the server sends it); other 4xx replies fail at once with a hint
naming the setting to check. A process-wide semaphore per server caps the requests in flight,
so worker threads and notebook cells together never exceed ``openai_concurrency``. The API key
is never logged or put in an error message: server replies that echo it are scrubbed.

httpx is an optional dependency (``batchnb[llm]``): it is imported when the first request is
made, so a missing package is reported only when the LLM backend is used.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from batchnb.errors import ConfigurationError, ExtractorError, MissingDependencyError

if TYPE_CHECKING:
    import httpx

OPENAI_BASE_URL = "https://api.openai.com/v1"
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 120.0

_LIMITS: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_LIMITS_LOCK = threading.Lock()


def request_limit(base_url: str, concurrency: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore shared by every client talking to ``base_url``."""
    with _LIMITS_LOCK:
        key = (base_url, concurrency)
        if key not in _LIMITS:
            _LIMITS[key] = threading.BoundedSemaphore(concurrency)
        return _LIMITS[key]


class ChatClient:
    """Sends chat completions to one server and returns the assistant's text.

    Parameters
    ----------
    base_url:
        The server's API root, e.g. ``https://api.openai.com/v1`` or ``http://localhost:11434/v1``.
    api_key:
        Sent as a bearer token (and as ``api-key`` to ``*.azure.com``); empty for local servers.
    model:
        Model name as the server knows it.
    timeout:
        Seconds to wait for one reply before the request counts as failed and is retried.
    max_retries:
        Retries after the first attempt on 429, 5xx, timeouts and connection errors.
    concurrency:
        Most requests in flight to ``base_url`` in this process, across all clients.
    backoff_seconds:
        First retry delay; doubled on each retry (with jitter), at most 30 s.
    sleep:
        Waits between retries; tests pass a recorder.
    client:
        An ``httpx.Client`` to send with (the caller keeps it and closes it).
    transport:
        An httpx transport for the client made here, e.g. ``httpx.MockTransport(handler)``.
    """

    def __init__(
        self,
        base_url: str = OPENAI_BASE_URL,
        api_key: str = "",
        model: str = "gpt-4o-mini",
        timeout: float = 60.0,
        max_retries: int = 3,
        concurrency: int = 4,
        *,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigurationError(
                f"BATCHNB_OPENAI_BASE_URL must be an http(s) URL such as {OPENAI_BASE_URL} or "
                f"http://localhost:11434/v1, got {base_url!r}"
            )
        if timeout <= 0:
            raise ConfigurationError("BATCHNB_OPENAI_TIMEOUT_SECONDS must be positive")
        if concurrency < 1:
            raise ConfigurationError("BATCHNB_OPENAI_CONCURRENCY must be at least 1")
        if max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0")
        if client is not None and transport is not None:
            raise ConfigurationError("pass client= or transport=, not both")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.injected = client is not None or transport is not None
        self._api_key = api_key
        self._sleep = sleep
        self._limit = request_limit(self.base_url, concurrency)
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
            if (urlsplit(self.base_url).hostname or "").endswith(".azure.com"):
                self._headers["api-key"] = api_key
        self._given_client = client
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any]) -> str:
        """POST one chat completion (temperature 0) and return the assistant's text.

        Raises
        ------
        ExtractorError
            The server refused the request, kept failing, or replied without content.
        MissingDependencyError
            httpx is not installed.
        """
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "response_format": response_format,
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
                + (f" (refusal: {self.scrub(str(refusal))})" if refusal else "")
            )
        return content

    def close(self) -> None:
        """Close the connections of the client made here; an injected client stays open.

        A new client is made if requests are sent again.
        """
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def scrub(self, text: str) -> str:
        """``text`` with the API key masked, for messages that quote the server."""
        return text.replace(self._api_key, "***") if self._api_key else text

    def _http(self) -> httpx.Client:
        if self._given_client is not None:
            return self._given_client
        with self._client_lock:
            if self._client is None:
                try:
                    import httpx
                except ImportError:
                    raise MissingDependencyError("httpx", "llm", "the openai extractor") from None
                self._client = httpx.Client(transport=self._transport)
            return self._client

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
                    response = client.post(
                        self.url, json=body, headers=self._headers, timeout=self.timeout
                    )
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
        data = _json_or_none(response)
        if not isinstance(data, dict):
            raise ExtractorError(
                f"{self.url} replied with something other than a JSON object: "
                f"{self.scrub(response.text[:200])!r}"
            )
        return data

    def _server_message(self, response: httpx.Response) -> str:
        """The error message the server sent (OpenAI, Ollama and vLLM shapes), scrubbed."""
        message: Any = response.text
        data = _json_or_none(response)
        if isinstance(data, dict):
            error = data.get("error", data.get("message", data.get("detail")))
            if isinstance(error, dict):
                error = error.get("message", error)
            if error:
                message = error
        return self.scrub(" ".join(str(message).split())[:500]) or response.reason_phrase


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


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # servers and proxies answer errors in HTML or plain text too
        return None


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "; check BATCHNB_OPENAI_API_KEY"
    if status == 404:
        return "; check BATCHNB_OPENAI_BASE_URL and BATCHNB_OPENAI_MODEL"
    return ""
