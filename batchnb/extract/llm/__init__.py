"""The LLM backend: the ``openai`` extractor and the pieces an in-process model plugin reuses.

A plugin that runs its own model (llama.cpp bindings, transformers, an ONNX model) needs the
same four steps as the ``openai`` extractor, and can take them from here:

1. :func:`build_messages` (and :func:`response_schema` / :func:`response_format`): the chat
   messages and the string-typed JSON Schema the model is held to;
2. the model's own call;
3. :func:`read_reply`: the reply's JSON object, checked against the schema's shape
   (:class:`ReplyError` says what is wrong, for a :func:`repair_messages` turn);
4. :func:`build_result`: the values typed (:func:`typed_value`) and grounded in the page texts
   (:func:`ground`) as an :class:`~batchnb.extract.ExtractionResult`.

Modules: ``prompt`` (messages, response schema), ``client`` (HTTP with retries, Retry-After
and a concurrency cap), ``reply`` (reading the model's JSON), ``grounding`` (finding values in
page text), ``results`` (typing values into a result), ``extractor`` (the ``openai`` extractor
and its entry point).
"""

from batchnb.extract.llm.client import OPENAI_BASE_URL, ChatClient, parse_retry_after
from batchnb.extract.llm.extractor import OpenAICompatibleExtractor, register
from batchnb.extract.llm.grounding import (
    EXACT_CONFIDENCE,
    LOOSE_CONFIDENCE,
    UNGROUNDED_CONFIDENCE,
    Span,
    ground,
)
from batchnb.extract.llm.prompt import (
    DEFAULT_MAX_INPUT_CHARS,
    build_messages,
    document_text,
    repair_messages,
    response_format,
    response_schema,
)
from batchnb.extract.llm.reply import ReplyError, read_reply
from batchnb.extract.llm.results import build_result, typed_value

__all__ = [
    "DEFAULT_MAX_INPUT_CHARS",
    "EXACT_CONFIDENCE",
    "LOOSE_CONFIDENCE",
    "OPENAI_BASE_URL",
    "UNGROUNDED_CONFIDENCE",
    "ChatClient",
    "OpenAICompatibleExtractor",
    "ReplyError",
    "Span",
    "build_messages",
    "build_result",
    "document_text",
    "ground",
    "parse_retry_after",
    "read_reply",
    "register",
    "repair_messages",
    "response_format",
    "response_schema",
    "typed_value",
]
