"""Protocol v1 lines (docs/protocol.md): builders for trades and triggers, and the encoder."""

from __future__ import annotations

import decimal
import json
from typing import Any, Dict, Optional, Union

__all__ = ["Number", "encode_line", "trade_event", "trigger_event"]

#: A number as the protocol takes it: a JSON number, a decimal string, or a Decimal (sent as
#: its string, so no digit is lost on the way).
Number = Union[int, float, str, decimal.Decimal]


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_line(obj: Any) -> str:
    """The line ``obj`` is sent as: compact JSON, UTF-8 kept as is, without the newline.

    ``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``; a ``Decimal`` becomes its
    string. JSON escapes every newline inside strings, so the result is always one line.
    """
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _put(event: Dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        event[name] = value


def trade_event(*, condition_id: str, trade_id: str, token_id: Optional[str], price: Number,
                size: Number, side: str, timestamp: Optional[int] = None,
                timestamp_ms: Optional[int] = None, outcome: Optional[str] = None,
                outcome_index: Optional[int] = None,
                raw_json: Union[str, Dict[str, Any], None] = None) -> Dict[str, Any]:
    """A ``trade`` line as a dict, fields named as docs/protocol.md lists them, ``None`` omitted.

    ``timestamp`` is epoch **seconds** and ``timestamp_ms`` epoch **milliseconds**; give one
    (or both, agreeing). The daemon refuses a value in the wrong unit with ``timestamp_units``
    rather than guessing. ``raw_json`` is stored as is (a dict is serialised first); without
    it the daemon stores the line itself.
    """
    if timestamp is None and timestamp_ms is None:
        raise TypeError("trade_event() needs timestamp (seconds) or timestamp_ms (milliseconds)")
    event: Dict[str, Any] = {"type": "trade", "condition_id": condition_id, "trade_id": trade_id}
    _put(event, "token_id", token_id)
    event["price"] = price
    event["size"] = size
    event["side"] = side
    _put(event, "timestamp", timestamp)
    _put(event, "timestamp_ms", timestamp_ms)
    _put(event, "outcome", outcome)
    _put(event, "outcome_index", outcome_index)
    if raw_json is not None and not isinstance(raw_json, str):
        raw_json = encode_line(raw_json)
    _put(event, "raw_json", raw_json)
    return event


def trigger_event(*, token_id: str, condition_id: str, threshold: Number,
                  trigger_timestamp: int, price: Optional[Number] = None,
                  size: Optional[Number] = None, model_score: Optional[Number] = None,
                  model_version: Optional[str] = None, outcome: Optional[str] = None,
                  outcome_index: Optional[int] = None) -> Dict[str, Any]:
    """A ``trigger`` line as a dict (``trigger_timestamp`` in epoch **milliseconds**)."""
    event: Dict[str, Any] = {"type": "trigger", "token_id": token_id,
                             "condition_id": condition_id, "threshold": threshold,
                             "trigger_timestamp": trigger_timestamp}
    _put(event, "price", price)
    _put(event, "size", size)
    _put(event, "model_score", model_score)
    _put(event, "model_version", model_version)
    _put(event, "outcome", outcome)
    _put(event, "outcome_index", outcome_index)
    return event
