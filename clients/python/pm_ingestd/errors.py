"""Exceptions raised by :mod:`pm_ingestd`."""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "IngestError",
    "ClientClosedError",
    "RejectedError",
    "ParseError",
    "SchemaError",
    "RangeError",
    "TimestampUnitsError",
    "TooLongError",
    "rejected_error",
]


class IngestError(Exception):
    """Base class of every exception this package raises on purpose."""


class ClientClosedError(IngestError):
    """The client was closed (or failed for good) before the line was acknowledged.

    Raised by sends still unacknowledged when :meth:`IngestClient.close` gave up waiting, by sends
    submitted after ``close()``, and by every outstanding send when a reconnect's hello was
    refused for good (the cause is then chained as ``__cause__``). Such a line may or may not
    have been stored: send it again on a new client if it matters (duplicates are harmless).
    """


class RejectedError(IngestError):
    """The daemon refused the line for good (any reason but ``busy``); it will never be stored.

    Attributes:
        reason: the protocol's reason string (``parse``, ``schema``, ``range``,
            ``timestamp_units``, ``too_long``, or one this client does not know).
        detail: the daemon's explanation of what was wrong.
        line: the text of the line as sent (without its newline), or ``None``.
        line_number: the line's number on the connection that was answered.
    """

    reason_name: str = ""

    def __init__(self, reason: str, detail: str = "", line: Optional[str] = None,
                 line_number: Optional[int] = None) -> None:
        self.reason = reason
        self.detail = detail
        self.line = line
        self.line_number = line_number
        super().__init__(reason, detail)

    def __str__(self) -> str:
        shown = self.line
        if shown is not None and len(shown) > 200:
            shown = shown[:200] + "..."
        text = f"{self.reason}: {self.detail}"
        if shown is not None:
            text += f" (line: {shown})"
        return text


class ParseError(RejectedError):
    """``parse``: not JSON (or not UTF-8), or an empty line."""

    reason_name = "parse"


class SchemaError(RejectedError):
    """``schema``: a missing or mistyped field, an unknown ``type``, not an object; also an
    unknown format in a hello line."""

    reason_name = "schema"


class RangeError(RejectedError):
    """``range``: a value out of its range (price, size, threshold, lengths, side, time)."""

    reason_name = "range"


class TimestampUnitsError(RejectedError):
    """``timestamp_units``: seconds where milliseconds are due, or the reverse."""

    reason_name = "timestamp_units"


class TooLongError(RejectedError):
    """``too_long``: the line is longer than the daemon's ``--max-line-bytes``."""

    reason_name = "too_long"


_BY_REASON: Dict[str, Type[RejectedError]] = {
    cls.reason_name: cls
    for cls in (ParseError, SchemaError, RangeError, TimestampUnitsError, TooLongError)
}


def rejected_error(reason: str, detail: str = "", line: Optional[str] = None,
                   line_number: Optional[int] = None) -> RejectedError:
    """The exception for a refusal with this reason (``RejectedError`` itself when unknown)."""
    return _BY_REASON.get(reason, RejectedError)(reason, detail, line, line_number)
