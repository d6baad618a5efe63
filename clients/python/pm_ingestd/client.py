"""The asyncio producer client of pm-ingestd (protocol v1, docs/protocol.md)."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import heapq
import json
import logging
import random
from typing import Any, Dict, List, Optional, Tuple, Union

from .errors import ClientClosedError, RejectedError, rejected_error
from .lines import Number, encode_line, trade_event, trigger_event

__all__ = ["IngestClient", "ClientStats", "DEFAULT_FORMAT", "FORMATS"]

log = logging.getLogger("pm_ingestd")

#: The daemon's own line format (docs/protocol.md); no hello line is sent for it.
DEFAULT_FORMAT = "pm-ingestd"


def _reads_as_hello(text: str) -> bool:
    """Whether the daemon would take ``text`` for a hello were it line 1 of a connection (an object
    with a ``hello`` member and no ``type``, however its key is spelled: it parses line 1 when it
    holds ``"hello"`` in quotes or ``\\u006``, the escape of any of its letters). Lines sent
    again after a reconnect are numbered from 1 again, so such a line could switch the connection's
    format, and every later line be acknowledged without being stored. A line nested too deeply
    for Python's parser (RecursionError, from ~1,000 levels: the daemon's reads up to 1,024) is
    taken for one: it may be a hello there, and it is no trade line anyway."""
    if '"hello"' not in text and "\\u006" not in text:
        return False
    try:
        obj = json.loads(text)
    except RecursionError:
        return True
    except ValueError:
        return False
    return isinstance(obj, dict) and "hello" in obj and "type" not in obj


def _line_count(reply: Dict[str, Any], key: str) -> int:
    """``reply[key]``, an ack's N or an error's line K: a JSON integer >= 0 (K 0 refuses the
    connection). Anything else (missing, a string, a bool, a float, negative) raises ValueError,
    a protocol error, and is not read as some line's number: an error taken for no line would
    let the ack after it resolve the refused line as durable."""
    value = reply.get(key)
    if type(value) is not int or value < 0:  # bool is an int subclass: excluded too
        raise ValueError(f"{key} {value!r} is not an integer >= 0")
    return value


#: Formats this client knows of. Others are sent as given; the daemon refuses an unknown one.
FORMATS = (DEFAULT_FORMAT, "clob-ws-market", "data-api-trades", "clob-rest-trades")

_READ_LIMIT = 1 << 20  # longest reply line read (replies are short; a detail is bounded)


@dataclasses.dataclass
class ClientStats:
    """Counters since the client was made (a snapshot: :attr:`IngestClient.stats`).

    ``sent`` counts lines written for the first time and ``resends`` every later write of one
    (after a reconnect or a ``busy``); hello lines are not counted. ``acked`` counts lines
    acknowledged (durable), ``rejected`` final refusals by reason, ``busy`` the ``busy``
    replies (each line's, plus connections refused with line 0). ``reconnects`` counts
    connections made after the first, ``connect_failures`` attempts that failed (refused,
    no socket, hello answered ``busy``). ``protocol_errors`` counts replies that were not JSON
    objects or were malformed acks or errors (an ``ack`` or ``line`` missing or not a JSON
    integer >= 0, an ``error`` or ``detail`` not a string, a line over 1 MiB): each drops the
    connection, and its unacknowledged lines go again;
    ``ignored_replies`` counts objects that are neither an ack nor an error, a reply kind a
    newer daemon may add, which the protocol lets a producer ignore. ``in_flight`` is the lines
    admitted and not finished (at most ``max_in_flight``), ``waiting`` those waiting for room.
    """

    sent: int = 0
    acked: int = 0
    resends: int = 0
    busy: int = 0
    rejected: Dict[str, int] = dataclasses.field(default_factory=dict)
    reconnects: int = 0
    connect_failures: int = 0
    protocol_errors: int = 0
    ignored_replies: int = 0
    in_flight: int = 0
    waiting: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class _HelloBusy(Exception):
    """The daemon answered the hello with ``busy``: reconnect later."""


class _Line:
    """One line: its text, the caller's future, and where it is on the wire now."""

    __slots__ = ("seq", "text", "data", "future", "conn", "number", "written", "queued",
                 "admitted", "room", "is_hello")

    def __init__(self, seq: int, text: str, future: "asyncio.Future[None]",
                 is_hello: bool = False) -> None:
        self.seq = seq
        self.text = text
        self.data = (text + "\n").encode("utf-8")
        self.future = future
        self.conn: Optional[_Connection] = None  # the connection it is on the wire of, if any
        self.number = 0                            # its line number there
        self.written = False                       # written at least once
        self.queued = False                        # in the client's to-send heap
        self.admitted = False                      # counted in in-flight
        self.room: Optional[asyncio.Future[None]] = None  # set when admitted (enqueue())
        self.is_hello = is_hello

    def __lt__(self, other: "_Line") -> bool:  # heap order: submission order
        return self.seq < other.seq


class _Connection:
    __slots__ = ("ident", "reader", "writer", "next_number", "acked", "lines", "ready", "dead",
                 "got_ack", "opened_at", "closed", "hello", "reader_task")

    def __init__(self, ident: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.ident = ident
        self.reader = reader
        self.writer = writer
        self.next_number = 0
        self.acked = 0
        self.lines: Dict[int, _Line] = {}
        self.ready = False       # hello acknowledged (or none due): data lines may go out
        self.dead = False
        self.got_ack = False     # a data line was acknowledged on it
        self.opened_at = loop.time()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.hello: Optional[_Line] = None
        self.reader_task: Optional[asyncio.Task[None]] = None


class IngestClient:
    """A producer connection to pm-ingestd that delivers every line exactly as the protocol asks.

    Contract:

    * **Resolved means durable.** Each send (``send_trade``, ``send_trigger``, ``send_raw``,
      ``send_text``, or the future of ``submit``/``enqueue``) resolves with ``None`` once the
      daemon has acknowledged its line: the line is fsynced in the daemon's write-ahead log and
      will reach PostgreSQL exactly once (a duplicate of a stored trade or trigger is
      acknowledged and not stored again).
    * **Refused lines raise.** A final refusal raises a :class:`~pm_ingestd.RejectedError`
      subclass (``ParseError``, ``SchemaError``, ``RangeError``, ``TimestampUnitsError``,
      ``TooLongError``) carrying ``reason``, ``detail`` and the ``line`` sent; that line is
      never stored and never resent. The lines around it are unaffected.
    * **Retried, not raised:** a ``busy`` reply (the daemon's backlog budget is used up, its
      log disk is full, it is shutting down): the client stops writing for a backoff
      (``busy_initial`` doubling to ``busy_max``, with jitter; reset by the next
      acknowledgement) and then sends the line again. A dropped connection (daemon killed,
      restarted): the client reconnects with a backoff (``reconnect_initial`` doubling to
      ``reconnect_max``, with jitter) and sends every line not yet acknowledged again, in
      submission order, on the new connection, where line numbers restart at 1. A send
      therefore waits as long as the daemon is away; bound it with ``asyncio.wait_for`` if
      you must (see cancellation below).
    * **Pipelining and backpressure:** at most ``max_in_flight`` lines are unacknowledged at a
      time. Sends beyond that wait, in submission order, until acknowledgements make room;
      ``asyncio.gather`` many sends to keep the pipe full.
    * **Order:** lines are written in submission order; a resent line keeps its place among the
      resent ones, but a line refused ``busy`` goes out again after lines already written.
    * **Cancellation:** cancelling a send whose line was not written yet withdraws it at once
      (it no longer counts in ``stats.waiting`` or ``stats.in_flight``); once written, the
      line is still delivered (it may be stored already) and keeps its slot until
      acknowledged.
    * **Formats:** with ``format`` other than ``"pm-ingestd"`` every connection starts with
      the hello line ``{"hello":{"format":"<format>"}}`` (its line 1) and data lines go out
      only after the daemon acknowledged it. A hello refused with ``schema`` (unknown format)
      or any other final reason raises from :meth:`connect`; on a later reconnect it fails
      every outstanding send with :class:`ClientClosedError` (the refusal chained) and closes
      the client. With a non-default format send Polymarket's own payloads with
      :meth:`send_raw` (a dict, or a list of dicts as one line) or :meth:`send_text`;
      ``send_trade`` and ``send_trigger`` build pm-ingestd lines and refuse to run.
    * **One event loop:** the client belongs to the loop running :meth:`connect` and is not
      thread-safe. From another thread use ``asyncio.run_coroutine_threadsafe(client.send_...,
      loop)``.
    """

    def __init__(self, socket_path: str, *, format: str = DEFAULT_FORMAT,
                 max_in_flight: int = 1000, reconnect_initial: float = 0.05,
                 reconnect_max: float = 2.0, busy_initial: float = 0.05,
                 busy_max: float = 2.0) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if not (0 < reconnect_initial <= reconnect_max):
            raise ValueError("need 0 < reconnect_initial <= reconnect_max")
        if not (0 < busy_initial <= busy_max):
            raise ValueError("need 0 < busy_initial <= busy_max")
        if not isinstance(format, str) or not format:
            raise ValueError("format must be a non-empty string")
        self.socket_path = socket_path
        self.format = format
        self.max_in_flight = max_in_flight
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.busy_initial = busy_initial
        self.busy_max = busy_max

        self._stats = ClientStats()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._seq = 0
        self._conn_ident = 0
        # submitted, no room yet (by seq, in submission order; a cancelled one leaves at once)
        self._waiting: "collections.OrderedDict[int, _Line]" = collections.OrderedDict()
        self._outstanding: Dict[int, _Line] = {}             # admitted, not finished (by seq)
        self._to_send: List[_Line] = []                      # heap: admitted, not on the wire
        self._conn: Optional[_Connection] = None
        self._supervisor: Optional[asyncio.Task[None]] = None
        self._drained: Optional[asyncio.Event] = None
        self._pump_scheduled = False
        self._paused_until = 0.0
        self._pause_timer: Optional[asyncio.TimerHandle] = None
        self._busy_delay = busy_initial
        self._reconnect_delay = reconnect_initial
        self._connected_once = False
        self._closing = False
        self._closed = False
        self._fatal: Optional[BaseException] = None
        self._close_requested: Optional[asyncio.Future[None]] = None  # set by close()
        self._connecting: Optional[asyncio.Future[None]] = None       # set when connect() ends

    # ----------------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> "IngestClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def connect(self, timeout: Optional[float] = 10.0) -> None:
        """Open the first connection (and have its hello acknowledged, for a non-default format).

        Retries with the reconnect backoff while the socket is missing or refuses, or a hello
        goes unanswered, for at most ``timeout`` seconds (``None``: forever; ``0``: one attempt;
        a hello is waited for at least a second), then raises the last ``OSError``. A hello refused for good raises its :class:`RejectedError` (``SchemaError``
        for an unknown format) and leaves the client closed. Raising otherwise, or cancelled
        (``asyncio.wait_for(client.connect(None), 5)``), it leaves the client unconnected, and
        ``connect()`` may be called again. Afterwards the client keeps a connection by itself
        until :meth:`close`.

        After :meth:`close` it raises :class:`ClientClosedError` and opens nothing; a
        :meth:`close` while it runs stops it: the attempt under way is abandoned (its socket
        closed before ``close()`` returns) and it raises :class:`ClientClosedError`.
        """
        if self._closing or self._closed:
            raise ClientClosedError("client is closed") from self._fatal
        if self._loop is not None:
            raise RuntimeError("connect() was called already")
        self._loop = asyncio.get_running_loop()
        self._drained = asyncio.Event()
        self._drained.set()
        self._close_requested = self._loop.create_future()
        self._connecting = self._loop.create_future()
        try:
            conn = await self._first_connection(timeout)
            if self._closing:  # close() came as the attempt succeeded
                self._drop(conn)
                raise ClientClosedError("client closed while connect() ran")
        except ClientClosedError:
            # close() stopped it: close() failed the lines and owns the client's state now.
            raise
        except RejectedError as exc:
            # Refused for good: the client stays closed, and the lines other tasks sent while it
            # tried fail as on a reconnect's refusal.
            closed = ClientClosedError(f"hello refused: {exc}")
            closed.__cause__ = exc
            self._fail_everything(closed)
            raise
        except BaseException:
            # Cancelled (asyncio.wait_for around connect()), timed out, or anything else: the
            # client is as before the call, so connect() may be called again; sends meanwhile
            # raise "not connected" instead of waiting for a connection nothing would open, and
            # the lines other tasks sent while it tried fail (none was written).
            self._fail_everything(ConnectionError(f"connect() to {self.socket_path} did not complete; "
                                                  "the line was not sent"))
            self._loop = None
            self._drained = None
            raise
        finally:
            if not self._connecting.done():
                self._connecting.set_result(None)
        self._supervisor = self._loop.create_task(self._supervise(conn))

    async def _first_connection(self, timeout: Optional[float]) -> _Connection:
        """connect()'s attempts with the reconnect backoff, within ``timeout``."""
        loop = self._require_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = self.reconnect_initial
        assert self._close_requested is not None
        while True:
            if self._closing:
                raise ClientClosedError("client closed while connect() ran")
            attempt = loop.create_task(self._open_within(deadline))
            try:
                await asyncio.wait({attempt, self._close_requested},
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:  # cancelled from outside, or close() came first: the attempt stops too
                if not attempt.done():
                    attempt.cancel()
                    await asyncio.gather(attempt, return_exceptions=True)
            if self._closing:
                if not attempt.cancelled() and attempt.exception() is None:
                    self._drop(attempt.result())
                raise ClientClosedError("client closed while connect() ran")
            try:
                return attempt.result()
            except RejectedError as exc:
                self._closing = self._closed = True
                self._fatal = exc
                raise
            except (OSError, _HelloBusy) as exc:
                self._stats.connect_failures += 1
                pause = self._jitter(delay)
                if deadline is not None and loop.time() + pause > deadline:
                    if isinstance(exc, _HelloBusy):
                        raise ConnectionError(f"pm-ingestd at {self.socket_path} answered the "
                                              f"hello with busy: {exc}") from None
                    raise
                # The pause ends early when close() is called.
                await asyncio.wait({self._close_requested}, timeout=pause)
                delay = min(delay * 2, self.reconnect_max)

    async def close(self, timeout: Optional[float] = 30.0) -> int:
        """Stop taking sends, wait until every outstanding line is acknowledged or refused, close.

        Waits at most ``timeout`` seconds (``None``: as long as it takes; reconnects and
        resends go on meanwhile). Lines still unacknowledged then are abandoned: their sends
        raise :class:`ClientClosedError`. Returns how many lines were abandoned (0 when every
        send finished). Safe to call more than once. Called while :meth:`connect` runs, it
        stops that connect (which raises :class:`ClientClosedError`) and does not wait: the
        lines sent meanwhile are abandoned at once.
        """
        self._closing = True
        if self._close_requested is not None and not self._close_requested.done():
            self._close_requested.set_result(None)
        if self._loop is None or self._closed:
            self._closed = True
            return 0
        assert self._drained is not None
        if self._supervisor is None:
            # connect() is running: it stops now (its socket, if any, closed before we return);
            # nothing would deliver the lines sent meanwhile, so they are not waited for.
            assert self._connecting is not None
            await asyncio.shield(self._connecting)
        elif self._outstanding or self._waiting:
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        abandoned = self._fail_everything(ClientClosedError("client closed before the line was "
                                                            "acknowledged"))
        self._closed = True
        conn = self._conn
        if conn is not None:
            self._drop(conn)
            if conn.reader_task is not None:
                await asyncio.gather(conn.reader_task, return_exceptions=True)
            try:
                await conn.writer.wait_closed()
            except (OSError, RuntimeError):
                pass
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None
        sup = self._supervisor
        if sup is not None and not sup.done():
            sup.cancel()
            try:
                await sup
            except asyncio.CancelledError:
                pass
        return abandoned

    @property
    def connected(self) -> bool:
        """Whether a connection is open and ready for data lines now."""
        return self._conn is not None and self._conn.ready and not self._conn.dead

    @property
    def stats(self) -> ClientStats:
        """A snapshot of the counters (see :class:`ClientStats`)."""
        snap = dataclasses.replace(self._stats, rejected=dict(self._stats.rejected))
        snap.in_flight = len(self._outstanding)
        snap.waiting = len(self._waiting)
        return snap

    # ----------------------------------------------------------------------------- sending

    async def send_trade(self, *, condition_id: str, trade_id: str, token_id: Optional[str],
                         price: Number, size: Number, side: str, timestamp: Optional[int] = None,
                         timestamp_ms: Optional[int] = None, outcome: Optional[str] = None,
                         outcome_index: Optional[int] = None,
                         raw_json: Union[str, Dict[str, Any], None] = None) -> None:
        """Send a trade; return once it is durable (acknowledged). Raises a RejectedError.

        ``timestamp`` is epoch seconds, ``timestamp_ms`` epoch milliseconds (give one; a value
        in the wrong unit raises :class:`TimestampUnitsError`). ``None`` fields are omitted.
        Numbers may be int, float, decimal strings or ``Decimal``.
        """
        self._require_default_format("send_trade")
        await self.send_raw(trade_event(
            condition_id=condition_id, trade_id=trade_id, token_id=token_id, price=price,
            size=size, side=side, timestamp=timestamp, timestamp_ms=timestamp_ms,
            outcome=outcome, outcome_index=outcome_index, raw_json=raw_json))

    async def send_trigger(self, *, token_id: str, condition_id: str, threshold: Number,
                           trigger_timestamp: int, price: Optional[Number] = None,
                           size: Optional[Number] = None, model_score: Optional[Number] = None,
                           model_version: Optional[str] = None, outcome: Optional[str] = None,
                           outcome_index: Optional[int] = None) -> None:
        """Send a trigger (``trigger_timestamp`` in epoch ms); return once it is durable.

        A trigger that is not the first for its (token, condition, threshold) or (condition,
        threshold) is acknowledged and not stored (G2); that is a success here too.
        """
        self._require_default_format("send_trigger")
        await self.send_raw(trigger_event(
            token_id=token_id, condition_id=condition_id, threshold=threshold,
            trigger_timestamp=trigger_timestamp, price=price, size=size,
            model_score=model_score, model_version=model_version, outcome=outcome,
            outcome_index=outcome_index))

    async def send_raw(self, obj: Any) -> None:
        """Send any JSON-serialisable object (normally a dict, or a list of dicts) as one line,
        encoded by :func:`pm_ingestd.encode_line`; return once it is acknowledged."""
        await self.submit(obj)

    async def send_text(self, line: str) -> None:
        """Send an already serialised line verbatim (no newline in it); return once acknowledged.

        For payloads that arrive as text (a websocket frame): nothing is parsed or re-encoded.
        """
        await self.submit_text(line)

    def submit(self, obj: Any) -> "asyncio.Future[None]":
        """Queue ``obj`` as one line without waiting; the future resolves when it is acknowledged.

        The line is written once there is room (``max_in_flight``); lines waiting for room are
        held in memory without a bound, so a producer faster than the daemon should prefer
        :meth:`enqueue` or awaiting the sends.
        """
        return self.submit_text(encode_line(obj))

    def submit_text(self, line: str) -> "asyncio.Future[None]":
        """:meth:`submit` for an already serialised line (sent verbatim; no newline in it)."""
        return self._submit(line).future

    async def enqueue(self, obj: Any) -> "asyncio.Future[None]":
        """Wait for room (backpressure), queue ``obj`` and return its future (resolves on ack)."""
        line = self._submit(encode_line(obj))
        if not line.admitted and not line.future.done():
            line.room = self._require_loop().create_future()
            try:
                await line.room
            except asyncio.CancelledError:
                line.future.cancel()  # not admitted yet: withdrawn
                raise
        return line.future

    # ----------------------------------------------------------------------------- internals

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("IngestClient is not connected: await connect() first")
        return self._loop

    def _require_default_format(self, what: str) -> None:
        if self.format != DEFAULT_FORMAT:
            raise TypeError(f"{what}() builds pm-ingestd lines; with format {self.format!r} send "
                            "the source's payloads with send_raw() or send_text()")

    def _jitter(self, delay: float) -> float:
        return delay * random.uniform(0.5, 1.0)

    def _submit(self, text: str) -> _Line:
        loop = self._require_loop()
        if "\n" in text:
            raise ValueError("a line may not contain a newline")
        if _reads_as_hello(text):
            raise ValueError("a hello line (an object with a \"hello\" member and no \"type\"): the "
                             "client sends the hello itself on every connection (its format)")
        if self._closing or self._closed:
            raise ClientClosedError("client is closing") from self._fatal
        self._seq += 1
        line = _Line(self._seq, text, loop.create_future())
        line.future.add_done_callback(lambda _future: self._withdraw(line))
        self._waiting[line.seq] = line
        assert self._drained is not None
        self._drained.clear()
        self._admit()
        return line

    def _admit(self) -> None:
        """Move waiting lines into the in-flight set while there is room."""
        while self._waiting and len(self._outstanding) < self.max_in_flight:
            _, line = self._waiting.popitem(last=False)
            if line.future.done():  # cancelled before it had room: withdrawn
                continue
            line.admitted = True
            self._outstanding[line.seq] = line
            if line.room is not None and not line.room.done():
                line.room.set_result(None)
            self._queue(line)
        self._check_drained()

    def _withdraw(self, line: _Line) -> None:
        """The done callback of a line's future: a send cancelled before its line was written
        gives the line up now, out of the waiting queue or, admitted, with its slot freed (a
        line still on the to-send heap stays there until _pump pops and skips it: taking it out
        at once cost O(n) per cancellation). Waiting for room or for a connection, it stayed
        until the client had both. A line never written took no line number; a written one
        keeps its slot."""
        if not line.future.cancelled() or line.written:
            return
        if line.admitted:
            if line.seq not in self._outstanding:
                return  # finished already: withdrawn by _pump, or failed (close())
            self._finish(line)  # on the heap still, if queued: _pump skips what is not outstanding
            # Without a connection _pump does not run, and each withdrawn line's slot lets another
            # in: the heap is rebuilt once finished lines are most of it (amortised O(1) each).
            if len(self._to_send) > 2 * len(self._outstanding) + 64:
                self._to_send = [queued for queued in self._to_send if queued.seq in self._outstanding]
                heapq.heapify(self._to_send)
        else:
            self._waiting.pop(line.seq, None)
            if line.room is not None and not line.room.done():
                line.room.set_result(None)
            self._check_drained()

    def _check_drained(self) -> None:
        if not self._outstanding and not self._waiting and self._drained is not None:
            self._drained.set()

    def _queue(self, line: _Line) -> None:
        if not line.queued:
            line.queued = True
            heapq.heappush(self._to_send, line)
        self._schedule_pump()

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled and self._loop is not None:
            self._pump_scheduled = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        """Write every queued line, in submission order, to the ready connection (one write)."""
        self._pump_scheduled = False
        conn = self._conn
        if conn is None or not conn.ready or conn.dead or not self._to_send:
            return
        assert self._loop is not None
        now = self._loop.time()
        if now < self._paused_until:
            if self._pause_timer is None:
                self._pause_timer = self._loop.call_at(self._paused_until, self._pause_over)
            return
        chunks: List[bytes] = []
        while self._to_send:
            line = heapq.heappop(self._to_send)
            line.queued = False
            if line.seq not in self._outstanding:
                continue
            if line.future.done() and not line.written:  # cancelled before written: withdraw
                self._finish(line)
                continue
            chunks.append(self._place(conn, line))
        if chunks:
            self._write(conn, b"".join(chunks))

    def _pause_over(self) -> None:
        self._pause_timer = None
        self._schedule_pump()

    def _place(self, conn: _Connection, line: _Line) -> bytes:
        """Give ``line`` the next number on ``conn`` and return its bytes."""
        conn.next_number += 1
        line.conn = conn
        line.number = conn.next_number
        conn.lines[line.number] = line
        if not line.is_hello:
            if line.written:
                self._stats.resends += 1
            else:
                self._stats.sent += 1
            line.written = True
        return line.data

    def _write(self, conn: _Connection, data: bytes) -> None:
        try:
            if conn.writer.transport.is_closing():
                raise ConnectionResetError("transport closing")
            conn.writer.write(data)
        except (OSError, RuntimeError) as exc:
            log.debug("pm_ingestd: write failed (%s); reconnecting", exc)
            self._drop(conn)

    def _finish(self, line: _Line, exc: Optional[BaseException] = None) -> None:
        """``line`` is done: acknowledged (``exc`` None) or refused; free its slot."""
        line.conn = None
        if self._outstanding.pop(line.seq, None) is None:
            return
        if not line.future.done():
            if exc is None:
                line.future.set_result(None)
            else:
                line.future.set_exception(exc)
        self._admit()

    def _fail_everything(self, exc: BaseException) -> int:
        """Fail every waiting and outstanding line with ``exc``; return how many there were."""
        failed = 0
        while self._waiting:
            _, line = self._waiting.popitem(last=False)
            if not line.future.done():
                line.future.set_exception(exc)
                failed += 1
            if line.room is not None and not line.room.done():
                line.room.set_result(None)
        for line in list(self._outstanding.values()):
            self._outstanding.pop(line.seq, None)
            line.conn = None
            if not line.future.done():
                line.future.set_exception(exc)
                failed += 1
        self._to_send.clear()
        self._check_drained()
        return failed

    async def _open_within(self, deadline: Optional[float]) -> _Connection:
        """_open(), given until ``deadline`` (at least a second) to have its hello answered: a
        daemon that accepts but never answers (stopped, hung) is a failed attempt, not a wait
        without end."""
        if deadline is None:
            return await self._open()
        loop = self._require_loop()
        try:
            return await asyncio.wait_for(self._open(), max(deadline - loop.time(), 1.0))
        except asyncio.TimeoutError:
            raise ConnectionError(f"pm-ingestd at {self.socket_path} did not answer the hello "
                                  f"within the connect timeout") from None

    async def _open(self) -> _Connection:
        """Connect, send the hello if due and wait for its ack; the connection becomes current."""
        loop = self._require_loop()
        reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=_READ_LIMIT)
        self._conn_ident += 1
        conn = _Connection(self._conn_ident, reader, writer, loop)
        conn.reader_task = loop.create_task(self._read(conn))
        if self.format != DEFAULT_FORMAT:
            hello = _Line(0, encode_line({"hello": {"format": self.format}}),
                          loop.create_future(), is_hello=True)
            conn.hello = hello
            self._write(conn, self._place(conn, hello))
            try:
                await hello.future
            except BaseException:
                self._drop(conn)
                raise
        conn.ready = True
        if self._connected_once:
            self._stats.reconnects += 1
            log.info("pm_ingestd: reconnected to %s; resending %d unacknowledged lines",
                     self.socket_path, len(self._outstanding))
        self._connected_once = True
        self._conn = conn
        self._schedule_pump()
        return conn

    async def _supervise(self, conn: _Connection) -> None:
        """Keep a connection: after each drop, reconnect with backoff while lines remain or the
        client is open."""
        assert self._loop is not None
        while True:
            await asyncio.shield(conn.closed)
            if self._closed:
                return
            lived = self._loop.time() - conn.opened_at
            if conn.got_ack or lived >= self.reconnect_max:
                self._reconnect_delay = self.reconnect_initial
                first_pause = 0.0
            else:  # closed without acknowledging anything: do not spin
                first_pause = self._jitter(self._reconnect_delay)
                self._reconnect_delay = min(self._reconnect_delay * 2, self.reconnect_max)
            log.warning("pm_ingestd: connection to %s lost with %d lines unacknowledged",
                        self.socket_path, len(self._outstanding))
            if first_pause:
                await asyncio.sleep(first_pause)
            while True:
                if self._closed:
                    return
                try:
                    conn = await self._open()
                    break
                except RejectedError as exc:
                    log.error("pm_ingestd: the daemon refused the hello for format %r: %s",
                              self.format, exc)
                    self._fatal = exc
                    self._closing = True
                    closed = ClientClosedError(f"hello refused on reconnect: {exc}")
                    closed.__cause__ = exc
                    self._fail_everything(closed)
                    self._closed = True
                    return
                except (OSError, _HelloBusy):
                    self._stats.connect_failures += 1
                    await asyncio.sleep(self._jitter(self._reconnect_delay))
                    self._reconnect_delay = min(self._reconnect_delay * 2, self.reconnect_max)

    async def _read(self, conn: _Connection) -> None:
        try:
            while True:
                try:
                    raw = await conn.reader.readline()
                except ValueError:  # a reply line over _READ_LIMIT: no daemon writes one
                    self._stats.protocol_errors += 1
                    log.error("pm_ingestd: a reply line over %d bytes; reconnecting", _READ_LIMIT)
                    break
                if not raw.endswith(b"\n"):  # end of stream (a partial last reply is dropped)
                    break
                try:
                    reply = json.loads(raw)
                    if not isinstance(reply, dict):
                        raise ValueError("reply is not an object")
                    self._on_reply(conn, reply)
                except (ValueError, TypeError, KeyError) as exc:
                    self._stats.protocol_errors += 1
                    log.error("pm_ingestd: unexpected reply %r (%s); reconnecting", raw[:200], exc)
                    break
                if conn.dead:
                    break
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            log.debug("pm_ingestd: read failed: %s", exc)
        finally:
            self._drop(conn)

    def _on_reply(self, conn: _Connection, reply: Dict[str, Any]) -> None:
        if "ack" in reply:
            self._on_ack(conn, _line_count(reply, "ack"))
        elif "error" in reply:
            # A reason or detail that is not a string is a mistyped error reply: a protocol
            # error (as the C++ client takes it), not a refusal for some reason like "None".
            reason, detail = reply["error"], reply.get("detail", "")
            if not isinstance(reason, str) or not isinstance(detail, str):
                raise ValueError(f"error {reason!r} or detail {detail!r} is not a string")
            self._on_error(conn, reason, _line_count(reply, "line"), detail)
        else:  # a reply kind this client does not know: the protocol lets producers ignore it
            self._stats.ignored_replies += 1
            log.debug("pm_ingestd: ignored a reply of an unknown kind: %r", reply)

    def _on_ack(self, conn: _Connection, upto: int) -> None:
        if upto > conn.next_number:
            raise ValueError(f"ack {upto} beyond the {conn.next_number} lines sent")
        durable = False
        for number in range(conn.acked + 1, upto + 1):
            line = conn.lines.pop(number, None)
            if line is None or line.conn is not conn or line.number != number:
                continue  # refused (answered already) or requeued after busy
            if line.is_hello:
                line.conn = None
                if not line.future.done():
                    line.future.set_result(None)
                continue
            durable = True
            self._stats.acked += 1
            self._finish(line)
        conn.acked = max(conn.acked, upto)
        if durable:
            conn.got_ack = True
            self._busy_delay = self.busy_initial

    def _on_error(self, conn: _Connection, reason: str, number: int, detail: str) -> None:
        if number == 0:  # the connection itself was refused (too many connections)
            if reason == "busy":
                self._stats.busy += 1
            log.warning("pm_ingestd: connection refused: %s: %s", reason, detail)
            self._drop(conn)
            return
        line = conn.lines.pop(number, None)
        if line is None or line.conn is not conn or line.number != number:
            return
        line.conn = None
        if reason == "busy":
            self._stats.busy += 1
            if line.is_hello:
                if not line.future.done():
                    line.future.set_exception(_HelloBusy(detail))
                return
            self._start_busy_pause()
            self._queue(line)
            return
        exc = rejected_error(reason, detail, line.text, number)
        if line.is_hello:
            if not line.future.done():
                line.future.set_exception(exc)
            return
        self._stats.rejected[reason] = self._stats.rejected.get(reason, 0) + 1
        self._finish(line, exc)

    def _start_busy_pause(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        if now < self._paused_until:
            return
        self._paused_until = now + self._jitter(self._busy_delay)
        self._busy_delay = min(self._busy_delay * 2, self.busy_max)

    def _drop(self, conn: _Connection) -> None:
        """``conn`` is gone: requeue its unacknowledged lines (in order) for the next one.

        The transport is aborted, not closed: a close waits to flush what is still unsent, for
        ever when the daemon stops reading, and reports the connection lost (ends its reader)
        only then. Those bytes are lines sent again on the next connection, or abandoned."""
        if conn.dead:
            return
        conn.dead = True
        if self._conn is conn:
            self._conn = None
        try:
            conn.writer.transport.abort()
        except (OSError, RuntimeError):
            pass
        for number in sorted(conn.lines):
            line = conn.lines[number]
            if line.conn is not conn:
                continue
            line.conn = None
            if line.is_hello:
                if not line.future.done():
                    line.future.set_exception(ConnectionResetError(
                        "connection closed before the hello was answered"))
            elif line.seq in self._outstanding:
                self._queue(line)
        conn.lines.clear()
        if not conn.closed.done():
            conn.closed.set_result(None)
