"""The ``openai`` extractor: any OpenAI-compatible chat-completions server, chosen by base URL.

OpenAI, Azure OpenAI, Ollama (``http://localhost:11434/v1``), vLLM and the llama.cpp server all
speak ``POST {base_url}/chat/completions``. The model is asked for structured output with a
string-only schema (:mod:`~batchnb.extract.llm.prompt`): it copies each value as printed, and
the values are typed and grounded in Python (:mod:`~batchnb.extract.llm.results`), so they
carry a page and span like the offline extractor's. A reply that is not valid JSON gets one
repair request. Sending, retries and the concurrency cap are the
:class:`~batchnb.extract.llm.client.ChatClient`'s.

One instance keeps one HTTP client (a pool of connections) for its lifetime and is safe to
share between threads; :meth:`OpenAICompatibleExtractor.close` closes it. The API key comes
from the settings it is built from; it is never logged, stored or put in an error message.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from batchnb.config import Settings
from batchnb.documents.parsed import ParsedDocument
from batchnb.errors import ConfigurationError, ExtractorError, MissingDependencyError
from batchnb.extract.base import ExtractionResult
from batchnb.extract.llm.client import OPENAI_BASE_URL, ChatClient
from batchnb.extract.llm.prompt import (
    DEFAULT_MAX_INPUT_CHARS,
    build_messages,
    repair_messages,
    response_format,
)
from batchnb.extract.llm.reply import ReplyError, read_reply
from batchnb.extract.llm.results import build_result
from batchnb.extract.registry import RegisterExtractor
from batchnb.extract.schema import Schema

if TYPE_CHECKING:
    import httpx

_MISSING_KEY = (
    "set BATCHNB_OPENAI_API_KEY or BATCHNB_OPENAI_BASE_URL for a local server "
    "(Ollama, vLLM, llama.cpp)"
)
_OPTIONS = ("backoff_seconds", "max_input_chars", "max_retries")
"""Keys of ``extractor_options["openai"]``: the knobs without a setting of their own."""


class OpenAICompatibleExtractor:
    """Extracts with a model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Parameters
    ----------
    model:
        Model name as the server knows it; part of :attr:`version`, hence of the cache key.
    max_input_chars:
        Document characters sent; longer documents are cut with a note to the model.
    base_url, api_key, timeout, max_retries, concurrency, backoff_seconds, sleep, client, transport:
        How requests reach the server: see :class:`~batchnb.extract.llm.ChatClient`. Pass
        ``transport=httpx.MockTransport(handler)`` to test without a server; with ``client`` or
        ``transport`` given no API key is required.
    """

    name = "openai"
    version = "1"
    """The class's version; an instance's is ``"1:<model>"``, so a new model misses the cache."""
    needs = (
        "an OpenAI-compatible server (BATCHNB_OPENAI_BASE_URL); an API key "
        "(BATCHNB_OPENAI_API_KEY) for api.openai.com"
    )

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
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not model:
            raise ConfigurationError("set BATCHNB_OPENAI_MODEL to the model the server serves")
        if max_input_chars < 1:
            raise ConfigurationError("max_input_chars must be >= 1")
        self._chat = ChatClient(
            base_url,
            api_key,
            model,
            timeout,
            max_retries,
            concurrency,
            backoff_seconds=backoff_seconds,
            sleep=sleep,
            client=client,
            transport=transport,
        )
        self.base_url = self._chat.base_url
        self.url = self._chat.url
        self.model = model
        self.version = f"{OpenAICompatibleExtractor.version}:{model}"
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.max_input_chars = max_input_chars
        self._needs_key = not api_key and not self._chat.injected

    def __repr__(self) -> str:
        return f"OpenAICompatibleExtractor(base_url={self.base_url!r}, model={self.model!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatibleExtractor:
        """An extractor configured by the ``openai_*`` settings and ``extractor_options``.

        ``extractor_options["openai"]`` may set ``max_retries``, ``max_input_chars`` and
        ``backoff_seconds``.

        Raises
        ------
        ConfigurationError
            A setting is invalid, or an option is unknown.
        """
        options: dict[str, Any] = settings.options_for(cls.name)
        cls.check_options(options)
        return cls(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            model=settings.openai_model,
            timeout=settings.openai_timeout_seconds,
            concurrency=settings.openai_concurrency,
            **options,
        )

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        """Refuse settings that cannot work, at submit rather than at the first document.

        Raises
        ------
        ConfigurationError
            No API key for api.openai.com, no model, a base URL that is not http(s), an
            unknown option, or httpx missing; the message says what to set or install.
        """
        cls.check_options(settings.options_for(cls.name))
        if urlsplit(settings.openai_base_url).scheme not in ("http", "https"):
            raise ConfigurationError(
                f"BATCHNB_OPENAI_BASE_URL must be an http(s) URL such as {OPENAI_BASE_URL} or "
                f"http://localhost:11434/v1, got {settings.openai_base_url!r}"
            )
        if not settings.openai_model:
            raise ConfigurationError("set BATCHNB_OPENAI_MODEL to the model the server serves")
        if not settings.openai_api_key and _is_openai(settings.openai_base_url):
            raise ConfigurationError(
                f"the openai extractor needs an API key for api.openai.com: {_MISSING_KEY}"
            )
        if importlib.util.find_spec("httpx") is None:
            raise MissingDependencyError("httpx", "llm", "the openai extractor")

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Refuse ``extractor_options["openai"]`` keys this extractor does not take."""
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"BATCHNB_EXTRACTOR_OPTIONS for openai: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(_OPTIONS)}"
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
        if self._needs_key and _is_openai(self.base_url):
            raise ConfigurationError(_MISSING_KEY)
        messages = build_messages(document, schema, self.max_input_chars)
        answer_format = response_format(schema)
        reply = self._chat.complete(messages, answer_format)
        try:
            data = read_reply(reply, schema)
        except ReplyError as exc:
            repair = repair_messages(messages, reply, str(exc), schema)
            reply = self._chat.complete(repair, answer_format)
            try:
                data = read_reply(reply, schema)
            except ReplyError as again:
                raise ExtractorError(
                    f"model {self.model!r} at {self.base_url} did not return valid JSON matching "
                    f"the schema, even after a repair request: {again}; the reply began "
                    f"{self._chat.scrub(reply[:200])!r}"
                ) from None
        return build_result(data, document, schema, self.name)

    def close(self) -> None:
        """Close the HTTP connections (a new client is made if the extractor is used again)."""
        self._chat.close()


def register(register_extractor: RegisterExtractor) -> None:
    """Entry point of the ``batchnb.extractors`` group: registers ``openai``.

    The factory is :meth:`OpenAICompatibleExtractor.from_settings`, so each workspace's
    extractor talks to the server its settings name.
    """
    register_extractor(OpenAICompatibleExtractor.name, OpenAICompatibleExtractor.from_settings)


def _is_openai(base_url: str) -> bool:
    """Whether the URL is OpenAI's own API (which needs a key; local servers do not)."""
    return urlsplit(base_url).hostname == "api.openai.com"
