"""asyncio producer client of pm-ingestd: Polymarket trades and triggers, acknowledged once durable.

Standard library only. See :class:`IngestClient` for the contract (what resolves when, what is
retried, loop affinity) and docs/protocol.md in the pm-ingestd repository for the wire protocol.

    async with IngestClient("/run/pm-ingestd/ingest.sock") as client:
        await client.send_trade(condition_id="0xabc", trade_id="t1", token_id="123",
                                price=0.53, size=10, side="BUY", timestamp=1700000000)
"""

from .client import DEFAULT_FORMAT, FORMATS, ClientStats, IngestClient
from .errors import (ClientClosedError, IngestError, ParseError, RangeError, RejectedError,
                     SchemaError, TimestampUnitsError, TooLongError, rejected_error)
from .lines import Number, encode_line, trade_event, trigger_event

__version__ = "0.1.0"

__all__ = [
    "IngestClient", "ClientStats", "DEFAULT_FORMAT", "FORMATS",
    "IngestError", "ClientClosedError", "RejectedError", "ParseError", "SchemaError",
    "RangeError", "TimestampUnitsError", "TooLongError", "rejected_error",
    "Number", "encode_line", "trade_event", "trigger_event",
]
