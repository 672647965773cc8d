"""Exceptions raised by batchnb.

Every error a user can fix is a subclass of :class:`BatchnbError` whose message says what to
run or set. The CLI turns these into clean messages; everything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class BatchnbError(Exception):
    """Base class of every error batchnb raises on purpose."""


class ConfigurationError(BatchnbError):
    """A setting is missing, malformed, or names a backend whose driver is not installed."""


class MissingDependencyError(ConfigurationError):
    """An optional package is needed for the feature that was asked for."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(f"{feature} needs the '{package}' package: pip install 'batchnb[{extra}]'")
        self.package = package
        self.extra = extra


class IntakeError(BatchnbError):
    """A batch cannot be created from the files given (e.g. every file was refused)."""


class DocumentError(BatchnbError):
    """One document cannot be processed: corrupt, encrypted, empty, unsupported.

    This error is permanent for that document: it is recorded on the document's row and the
    batch carries on without retrying it.
    """


class SchemaError(BatchnbError):
    """A prompt or schema cannot be turned into fields (empty, too long, duplicate names)."""


class ExtractorError(BatchnbError):
    """An extractor is unknown or failed in a way that may succeed on retry."""


class NotFoundError(BatchnbError):
    """A batch, document or queue item does not exist."""


class QueueError(BatchnbError):
    """The queue is misconfigured or an item cannot be enqueued."""


class CancelledError(BatchnbError):
    """The work item was cancelled while it ran; raised at a checkpoint to stop it."""


class LeaseLostError(BatchnbError):
    """This worker's lease on an item expired and another worker may own it now."""


class ExportError(BatchnbError):
    """An export cannot be written as asked (unknown format or mode, no such array field)."""


class PermissionDeniedError(BatchnbError):
    """The acting user may not do this to a batch they do not own (and is not an admin)."""


class BatchStateError(BatchnbError):
    """A batch or document is not in a state that allows the operation (e.g. retrying a
    document that has not failed, closing a batch that still has work open)."""
