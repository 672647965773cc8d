"""Exceptions raised by batchnb.

Every error a user can fix is a subclass of :class:`BatchnbError` whose message says what to
run or set. The CLI turns these into clean messages; everything else is a bug and keeps its
traceback.

Each error has a ``kind`` (a short word stored with a failed document and counted by the
analytics) and says whether it is ``permanent``: the queue fails a permanent error at once
instead of trying again, because the document, the set-up or the request will not change by
itself. The kind is decided where the error is raised, never guessed from its message.
"""

from __future__ import annotations

from typing import ClassVar


class BatchnbError(Exception):
    """Base class of every error batchnb raises on purpose.

    Parameters
    ----------
    kind:
        What went wrong, in one word (overrides the class's kind), e.g. ``"encrypted"``.
    """

    kind: str = "error"
    permanent: ClassVar[bool] = False

    def __init__(self, *args: object, kind: str | None = None) -> None:
        super().__init__(*args)
        if kind is not None:
            self.kind = kind


class ConfigurationError(BatchnbError):
    """A setting is missing, malformed, or names a backend whose driver is not installed."""

    kind = "configuration"
    permanent = True


class MissingDependencyError(ConfigurationError):
    """An optional package is needed for the feature that was asked for."""

    kind = "missing_dependency"

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(f"{feature} needs the '{package}' package: pip install 'batchnb[{extra}]'")
        self.package = package
        self.extra = extra


class IntakeError(BatchnbError):
    """A batch cannot be created from the files given (e.g. every file was refused)."""

    kind = "intake"


class NothingNewError(IntakeError):
    """``submit(..., skip_processed=True)`` found only files that were processed before."""

    kind = "nothing_new"


class ScheduleError(BatchnbError):
    """A schedule cannot be added or run as asked (bad cron expression, unknown name...)."""

    kind = "schedule"


class DocumentError(BatchnbError):
    """One document cannot be processed: corrupt, encrypted, empty, unsupported, or its stored
    file changed after it was taken in.

    This error is permanent for that document: it is recorded on the document's row, with
    its kind (one of :data:`DOCUMENT_ERROR_KINDS`), and the batch carries on without
    retrying it.
    """

    kind = "corrupt"
    permanent = True


DOCUMENT_ERROR_KINDS = (
    "changed",
    "corrupt",
    "empty",
    "encrypted",
    "ocr",
    "too_large",
    "unsupported",
)
"""The kinds a :class:`DocumentError` is raised with."""


class SchemaError(BatchnbError):
    """A prompt or schema cannot be turned into fields (empty, too long, duplicate names)."""

    kind = "schema"
    permanent = True


class ExtractorError(BatchnbError):
    """An extractor failed in a way that may succeed on retry (a server down, a bad reply)."""

    kind = "extractor"


class UnknownExtractorError(ExtractorError):
    """No extractor has the name asked for, or it cannot be built: a set-up error."""

    kind = "unknown_extractor"
    permanent = True


class NotFoundError(BatchnbError):
    """A batch, document or queue item does not exist."""

    kind = "not_found"


class QueueError(BatchnbError):
    """The queue is misconfigured or an item cannot be enqueued."""

    kind = "queue"


class CancelledError(BatchnbError):
    """The work item was cancelled while it ran; raised at a checkpoint to stop it."""

    kind = "cancelled"


class LeaseLostError(BatchnbError):
    """This worker's lease on an item expired and another worker may own it now."""

    kind = "lease_lost"


class ExportError(BatchnbError):
    """An export cannot be written as asked (unknown format or mode, no such array field)."""

    kind = "export"
    permanent = True


class PermissionDeniedError(BatchnbError):
    """The acting user may not do this to a batch they do not own (and is not an admin)."""

    kind = "permission_denied"


class BatchStateError(BatchnbError):
    """A batch or document is not in a state that allows the operation (e.g. retrying a
    document that has not failed, closing a batch that still has work open)."""

    kind = "batch_state"


class PluginWarning(UserWarning):
    """An extractor plugin failed to load: its extractors are unavailable, the others work."""


WORKER_LOST = "worker_lost"
"""Kind of a failure whose worker stopped responding on every attempt (lease expired)."""


def error_kind(exc: BaseException) -> str:
    """The kind to store for a failure: a batchnb error's own, else the exception's class name."""
    if isinstance(exc, BatchnbError):
        return exc.kind
    return type(exc).__name__


def is_permanent(exc: BaseException) -> bool:
    """Whether trying again cannot cure ``exc`` (the queue then fails the item at once)."""
    return isinstance(exc, BatchnbError) and exc.permanent
