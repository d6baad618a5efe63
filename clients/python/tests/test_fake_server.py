"""The client against a scripted in-process Unix-socket server: hello lines and formats,
reconnect and resend, busy, backpressure, close. The test plays the daemon's part line by line."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, List, Optional

import pytest

from conftest import async_test, await_until

from pm_ingestd import (ClientClosedError, IngestClient, RangeError, SchemaError, encode_line)

HELLO = '{"hello":{"format":"clob-ws-market"}}'


class FakeConn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received: List[str] = []

    async def line(self, timeout: float = 5.0) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        assert raw.endswith(b"\n"), f"connection closed instead of a line: {raw!r}"
        text = raw[:-1].decode("utf-8")
        self.received.append(text)
        return text

    async def lines(self, n: int, timeout: float = 5.0) -> List[str]:
        return [await self.line(timeout) for _ in range(n)]

    async def nothing_more(self, quiet: float = 0.2) -> None:
        """Assert that the client sends nothing for ``quiet`` seconds (a negative check)."""
        with pytest.raises(asyncio.TimeoutError):
            raw = await asyncio.wait_for(self.reader.readline(), quiet)
            raise AssertionError(f"unexpected line {raw!r}")

    def reply(self, obj: Any) -> None:
        self.writer.write((json.dumps(obj) + "\n").encode())

    def ack(self, n: int) -> None:
        self.reply({"ack": n})

    def error(self, reason: str, line: int, detail: str = "fake detail") -> None:
        self.reply({"error": reason, "line": line, "detail": detail})

    def close(self) -> None:
        self.writer.close()


class FakeServer:
    def __init__(self, path: str) -> None:
        self.path = path
        self.accepted: "asyncio.Queue[FakeConn]" = asyncio.Queue()
        self.server: Optional[asyncio.AbstractServer] = None
        self.conns: List[FakeConn] = []

    async def __aenter__(self) -> "FakeServer":
        self.server = await asyncio.start_unix_server(self._on_connection, self.path)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()
        for conn in self.conns:  # Python >= 3.12 waits for the connections too
            conn.close()
        await self.server.wait_closed()

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        conn = FakeConn(reader, writer)
        self.conns.append(conn)
        await self.accepted.put(conn)

    async def next(self, timeout: float = 5.0) -> FakeConn:
        return await asyncio.wait_for(self.accepted.get(), timeout)

    async def connected(self, client: IngestClient) -> FakeConn:
        """Connects `client` (no hello: nothing to acknowledge) and returns its connection here."""
        connecting = asyncio.ensure_future(client.connect())
        conn = await self.next()
        await connecting
        return conn


def sock(workdir: Path) -> str:
    return str(workdir / "fake.sock")


@async_test(30)
async def test_hello_is_line_one_of_every_connection_and_payloads_go_as_one_line(
        workdir: Path) -> None:
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), format="clob-ws-market", reconnect_initial=0.01)
        connecting = asyncio.ensure_future(client.connect())
        c1 = await server.next()
        assert await c1.line() == HELLO
        await c1.nothing_more(0.1)
        assert not connecting.done(), "connect() resolves only once the hello is acknowledged"
        c1.ack(1)
        await connecting
        assert client.connected

        book = [{"event_type": "last_trade_price", "asset_id": "123", "price": "0.52",
                 "size": "10", "side": "BUY", "timestamp": "1700000000000", "market": "0xm"},
                {"event_type": "price_change", "asset_id": "456", "note": "ünï \n"}]
        one = asyncio.ensure_future(client.send_raw(book))        # a list: one line
        two = asyncio.ensure_future(client.send_raw(book[0]))     # a dict
        three = asyncio.ensure_future(client.send_text('{"verbatim": true}'))
        got = await c1.lines(3)
        assert got == [encode_line(book), encode_line(book[0]), '{"verbatim": true}']
        assert got[0] == json.dumps(book, separators=(",", ":"), ensure_ascii=False)
        assert "\n" not in got[0] and "ünï" in got[0]
        c1.ack(3)  # hello + two lines
        await asyncio.gather(one, two)
        assert not three.done()
        c1.ack(4)
        await three

        with pytest.raises(TypeError):
            await client.send_trade(condition_id="c", trade_id="t", token_id=None, price=0.5,
                                    size=1, side="BUY", timestamp=1)

        # A new connection starts with the hello again; data lines wait for its ack.
        four = asyncio.ensure_future(client.send_raw({"n": 4}))
        assert await c1.line() == '{"n":4}'
        c1.close()
        c2 = await server.next()
        assert await c2.line() == HELLO
        await c2.nothing_more(0.1)
        c2.ack(1)
        assert await c2.line() == '{"n":4}'   # resent as line 2 of the new connection
        assert not four.done()
        c2.ack(2)
        await four
        stats = client.stats
        assert (stats.sent, stats.acked, stats.resends, stats.reconnects) == (4, 4, 1, 1)
        assert await client.close() == 0


@async_test(30)
async def test_unknown_format_raises_from_connect(workdir: Path) -> None:
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), format="no-such-format")
        connecting = asyncio.ensure_future(client.connect())
        c = await server.next()
        assert await c.line() == '{"hello":{"format":"no-such-format"}}'
        during = client.submit_text('{"sent":"while connect() waits for the hello"}')
        c.error("schema", 1, "unknown format 'no-such-format'")
        with pytest.raises(SchemaError) as info:
            await connecting
        # The line another task sent meanwhile fails with the refusal (it never resolved).
        with pytest.raises(ClientClosedError, match="hello refused"):
            await asyncio.wait_for(during, 5)
        assert info.value.reason == "schema"
        assert info.value.detail == "unknown format 'no-such-format'"
        assert info.value.line == '{"hello":{"format":"no-such-format"}}'
        with pytest.raises(ClientClosedError):
            await client.send_raw({"x": 1})
        assert await client.close() == 0


@async_test(30)
async def test_hello_refused_on_a_reconnect_fails_the_outstanding_sends(workdir: Path) -> None:
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), format="data-api-trades", reconnect_initial=0.01)
        connecting = asyncio.ensure_future(client.connect())
        c1 = await server.next()
        assert await c1.line() == '{"hello":{"format":"data-api-trades"}}'
        c1.ack(1)
        await connecting
        pending = asyncio.ensure_future(client.send_raw({"id": 1}))
        await c1.line()
        c1.close()
        c2 = await server.next()
        await c2.line()
        c2.error("schema", 1, "unknown format")   # e.g. a downgraded daemon
        with pytest.raises(ClientClosedError) as info:
            await pending
        assert isinstance(info.value.__cause__, SchemaError)
        assert await client.close() == 0


@async_test(30)
async def test_drop_after_partial_acks_resends_the_rest_in_order(workdir: Path) -> None:
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), reconnect_initial=0.01)
        c1 = await server.connected(client)
        texts = [encode_line({"n": n}) for n in range(1, 7)]
        futs = [client.submit({"n": n}) for n in range(1, 7)]
        assert await c1.lines(6) == texts
        c1.ack(2)
        await asyncio.gather(*futs[:2])
        assert not any(f.done() for f in futs[2:])
        c1.error("range", 3, "price out of range")    # final: never resent
        with pytest.raises(RangeError) as info:
            await futs[2]
        assert info.value.line == texts[2] and info.value.line_number == 3
        c1.close()                                    # lines 4, 5, 6 unacknowledged

        c2 = await server.next()
        assert await c2.lines(3) == texts[3:]         # in order, numbered 1..3 here
        # Replies map to this connection's numbering: line 2 here is {"n":5}.
        c2.error("range", 2, "size out of range")
        with pytest.raises(RangeError) as info:
            await futs[4]
        assert info.value.line == texts[4] and info.value.line_number == 2
        assert not futs[3].done() and not futs[5].done()
        c2.ack(3)
        await asyncio.gather(futs[3], futs[5])
        # New lines continue the new numbering.
        seven = client.submit({"n": 7})
        assert await c2.line() == encode_line({"n": 7})
        c2.ack(4)
        await seven
        stats = client.stats
        assert stats.sent == 7 and stats.acked == 5 and stats.resends == 3
        assert stats.rejected == {"range": 2} and stats.reconnects == 1
        assert await client.close() == 0


@async_test(30)
async def test_a_reply_of_an_unknown_kind_is_ignored_and_the_connection_kept(workdir: Path) -> None:
    """The protocol may add reply kinds old producers can ignore; the client took one for a
    protocol error and dropped the connection, sending every unacknowledged line again."""
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), reconnect_initial=0.01)
        c1 = await server.connected(client)
        fut = client.submit({"a": 1})
        assert await c1.line() == '{"a":1}'
        c1.reply({"notice": "a reply kind from a newer daemon"})
        await c1.nothing_more()  # no resend: the connection was kept
        c1.ack(1)
        await fut
        stats = client.stats
        assert stats.ignored_replies == 1 and stats.protocol_errors == 0
        assert stats.reconnects == 0 and stats.resends == 0
        assert server.accepted.empty()
        assert await client.close() == 0


@async_test(30)
async def test_a_line_the_daemon_would_take_for_a_hello_is_refused_before_sending(workdir: Path) -> None:
    """Lines are numbered from 1 again on a new connection: a line the daemon reads as a hello (an
    object with a "hello" member and no "type"), sent first after a reconnect, would switch the
    connection's format and later lines be acknowledged without being stored."""
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), reconnect_initial=0.01)
        c1 = await server.connected(client)
        for text in (HELLO, ' { "hello" : {"format":"clob-ws-market"}}', '{"x":1,"hello":{"format":"clob-ws-market"}}',
                     '{"\\u0068ello":{"format":"clob-ws-market"}}'):
            with pytest.raises(ValueError, match="hello"):
                client.submit_text(text)
        with pytest.raises(ValueError, match="hello"):
            client.submit({"hello": {"format": "clob-ws-market"}})
        fut = client.submit_text('{"type":"trade","hello":1}')  # a type: data, not a hello
        assert await c1.line() == '{"type":"trade","hello":1}'
        c1.ack(1)
        await fut
        # Nested past Python's recursion limit (the check raised RecursionError): refused as a
        # possible hello, since the daemon reads up to 1,024 levels and Python stops near 1,000.
        for levels in (990, 20_000):
            with pytest.raises(ValueError, match="hello"):
                client.submit_text('{"hello":' + "[" * levels + "]" * levels + "}")
        assert await client.close() == 0


@async_test(30)
async def test_connection_refused_with_busy_line_zero_reconnects(workdir: Path) -> None:
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), reconnect_initial=0.01)
        c1 = await server.connected(client)
        fut = client.submit({"a": 1})
        await c1.line()
        c1.error("busy", 0, "too many connections")   # as --max-connections answers
        c1.close()
        c2 = await server.next()
        assert await c2.line() == '{"a":1}'
        c2.ack(1)
        await fut
        assert client.stats.busy == 1 and client.stats.rejected_total == 0
        assert await client.close() == 0


@async_test(30)
async def test_busy_line_is_sent_again_after_a_backoff(workdir: Path) -> None:
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), busy_initial=0.05, busy_max=0.05)
        c = await server.connected(client)
        futs = [client.submit({"n": n}) for n in range(3)]
        await c.lines(3)
        # The clock starts before the client can see `busy`: read after gather() resumed, it missed
        # whatever part of the pause passed before this task ran again (all of it on a slow machine).
        loop = asyncio.get_running_loop()
        started = loop.time()
        c.error("busy", 2, "backlog budget used up")
        c.ack(3)
        await asyncio.gather(futs[0], futs[2])
        assert not futs[1].done()
        # While paused, new lines wait too; then the busy line goes first (submission order).
        later = client.submit({"n": 3})
        assert await c.lines(2) == ['{"n":1}', '{"n":3}']
        assert loop.time() - started >= 0.02, "resent only after the busy backoff"
        c.ack(5)
        await asyncio.gather(futs[1], later)
        stats = client.stats
        assert stats.busy == 1 and stats.resends == 1 and stats.acked == 4
        assert await client.close() == 0


@async_test(30)
async def test_at_most_max_in_flight_lines_unacknowledged(workdir: Path) -> None:
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), max_in_flight=2)
        c = await server.connected(client)
        sends = [asyncio.ensure_future(client.send_raw({"n": n})) for n in range(5)]
        assert await c.lines(2) == ['{"n":0}', '{"n":1}']
        await c.nothing_more()
        assert client.stats.in_flight == 2 and client.stats.waiting == 3
        # enqueue() waits for room too.
        queued = asyncio.ensure_future(client.enqueue({"n": 5}))
        c.ack(1)
        assert await c.line() == '{"n":2}'
        await c.nothing_more(0.1)
        assert not queued.done()
        c.ack(3)
        assert await c.lines(2) == ['{"n":3}', '{"n":4}']
        c.ack(5)
        assert await c.line() == '{"n":5}'
        fut = await queued           # admitted: returns the ack's future
        assert not fut.done()
        c.ack(6)
        await asyncio.gather(fut, *sends)
        assert await client.close() == 0


@async_test(30)
async def test_close_waits_for_acks_then_abandons_what_is_left(workdir: Path) -> None:
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir))
        c = await server.connected(client)
        first = client.submit({"n": 1})
        second = client.submit({"n": 2})
        await c.lines(2)
        closing = asyncio.ensure_future(client.close(timeout=0.3))
        c.ack(1)
        assert await closing == 1
        await first
        with pytest.raises(ClientClosedError):
            await second
        with pytest.raises(ClientClosedError):
            client.submit({"n": 3})


@async_test(30)
async def test_connect_retries_until_the_socket_appears(workdir: Path) -> None:
    path = sock(workdir)
    client = IngestClient(path, reconnect_initial=0.01, reconnect_max=0.05)
    with pytest.raises(OSError):
        await client.connect(timeout=0)
    connecting = asyncio.ensure_future(client.connect(timeout=10))
    await await_until(lambda: client.stats.connect_failures >= 3, 5, "failed attempts")
    assert not os.path.exists(path)
    async with FakeServer(path) as server:
        await server.next()
        await connecting
        assert client.connected
        assert await client.close() == 0


@async_test(30)
async def test_connect_gives_up_on_a_daemon_that_never_answers_the_hello(workdir: Path) -> None:
    """A daemon that accepts but never answers the hello (stopped, hung): connect(timeout=...)
    waited for the hello without end; it now raises when the timeout is spent."""
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), format="clob-ws-market", reconnect_initial=0.01,
                              reconnect_max=0.05)
        with pytest.raises(ConnectionError, match="did not answer the hello"):
            await asyncio.wait_for(client.connect(timeout=0.5), 10)
        c = await server.next()
        assert await c.line() == HELLO
        assert not client.connected


@async_test(30)
async def test_a_cancelled_connect_leaves_a_client_that_can_connect_again(workdir: Path) -> None:
    """connect() bounded from outside (asyncio.wait_for) while the socket is missing: the client
    kept its loop but no supervisor, so a second connect() raised "called already" and a send was
    queued for a connection nothing would open; it waited for ever."""
    path = sock(workdir)
    client = IngestClient(path, reconnect_initial=0.01, reconnect_max=0.05)
    connecting = asyncio.ensure_future(client.connect(timeout=None))
    await await_until(lambda: client.stats.connect_failures >= 1, 5, "a failed attempt")
    during = client.submit({"n": 0})  # another task's send while connect() tries
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(connecting, 0.2)
    with pytest.raises(ConnectionError, match="did not complete"):
        await asyncio.wait_for(during, 5)
    with pytest.raises(RuntimeError, match="not connected"):
        client.submit({"n": 1})
    async with FakeServer(path) as server:
        await client.connect(timeout=5)
        c = await server.next()
        sent = client.submit({"n": 2})
        assert json.loads(await c.line()) == {"n": 2}
        c.ack(1)
        await asyncio.wait_for(sent, 5)
        assert await client.close() == 0


@async_test(30)
async def test_close_returns_within_its_timeout_when_the_daemon_stops_reading(workdir: Path) -> None:
    """A daemon that stops reading (hung, stopped) with the socket's buffers full: close() closed
    the transport gracefully, which waits to flush the unsent bytes first and so never reported
    the connection lost; close(timeout=...) waited for its reader without end."""
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), max_in_flight=10_000)
        c = await server.connected(client)
        c.writer.transport.pause_reading()  # type: ignore[attr-defined]  # reads nothing more
        pad = "x" * 2048
        futs = [client.submit({"n": n, "pad": pad}) for n in range(2000)]  # 4 MB: buffers full
        await await_until(lambda: client.stats.sent == 2000, 5, "every line written")
        assert await asyncio.wait_for(client.close(timeout=0.5), 5) == 2000
        for fut in futs:
            with pytest.raises(ClientClosedError):
                await fut


@async_test(30)
async def test_cancelled_sends_waiting_for_room_are_withdrawn_at_once(workdir: Path) -> None:
    """Sends bounded by asyncio.wait_for while every slot is taken (an outage): each cancelled
    line stayed in the waiting queue until there was room again, so memory grew with the
    outage's length times the send rate."""
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), max_in_flight=1)
        c = await server.connected(client)
        pending = client.submit({"n": 0})
        assert await c.line() == '{"n":0}'
        for n in range(1, 1001):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.send_raw({"n": n}), 0.001)
        stats = client.stats
        assert stats.waiting == 0 and stats.in_flight == 1
        later = client.submit({"n": 1001})
        c.ack(1)
        await pending
        # The withdrawn lines were never written and took no line number: this one is line 2.
        assert await c.line() == '{"n":1001}'
        c.ack(2)
        await asyncio.wait_for(later, 5)
        stats = client.stats
        assert (stats.sent, stats.acked, stats.waiting, stats.in_flight) == (2, 2, 0, 0)
        assert await client.close() == 0


@async_test(30)
async def test_a_cancelled_send_admitted_but_not_written_frees_its_slot_at_once(workdir: Path) -> None:
    """While no connection is ready (reconnecting, hello unanswered) admitted lines wait to be
    written; a cancelled one kept its slot until a connection was ready again."""
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), format="clob-ws-market", max_in_flight=2,
                              reconnect_initial=0.01)
        connecting = asyncio.ensure_future(client.connect())
        c1 = await server.next()
        assert await c1.line() == HELLO
        c1.ack(1)
        await connecting
        c1.close()
        c2 = await server.next()
        assert await c2.line() == HELLO  # not acknowledged yet: data lines wait
        for n in range(2000):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.send_raw({"n": n}), 0.001)
        stats = client.stats
        assert stats.in_flight == 0 and stats.waiting == 0
        # Nor do the withdrawn lines pile up on the to-send heap while no connection is ready.
        assert len(client._to_send) <= 2 * 2 + 64
        kept = client.submit({"n": "kept"})
        c2.ack(1)
        assert await c2.line() == '{"n":"kept"}'  # line 2, after the hello
        c2.ack(2)
        await asyncio.wait_for(kept, 5)
        assert client.stats.sent == 1
        assert await client.close() == 0


@async_test(30)
async def test_an_error_reply_without_a_line_number_is_a_protocol_error(workdir: Path) -> None:
    """An error reply whose line is missing was taken for line -1 and ignored, so the ack after
    it resolved, as durable, a line the daemon may have refused."""
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), reconnect_initial=0.01, reconnect_max=0.05)
        c1 = await server.connected(client)
        fut = client.submit({"a": 1})
        assert await c1.line() == '{"a":1}'
        c1.reply({"error": "busy", "detail": "x"})  # which line was refused is unknown
        c1.ack(1)
        c2 = await server.next()                    # the connection was dropped
        assert await c2.line() == '{"a":1}'         # and the line sent again
        assert not fut.done()
        stats = client.stats
        assert stats.protocol_errors == 1 and stats.acked == 0 and stats.resends == 1
        c2.ack(1)
        await asyncio.wait_for(fut, 5)
        assert await client.close() == 0


@async_test(30)
async def test_acks_and_line_numbers_that_are_not_json_integers_are_protocol_errors(
        workdir: Path) -> None:
    """int() made "1", true and 1.5 line numbers: an ack or a refusal of a line the daemon never
    named. Each such reply now drops the connection and the line goes again."""
    malformed = [{"ack": "1"}, {"ack": True}, {"ack": 1.5}, {"ack": 1.0}, {"ack": -1},
                 {"error": "range", "line": "1"}, {"error": "range", "line": True},
                 {"error": "range", "line": 1.0}, {"error": "range", "line": -1}]
    # (the error's reason and detail: test_a_mistyped_error_reply_is_a_protocol_error)
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), reconnect_initial=0.01, reconnect_max=0.05)
        conn = await server.connected(client)
        fut = client.submit({"a": 1})
        assert await conn.line() == '{"a":1}'
        for count, reply in enumerate(malformed, 1):
            conn.reply(reply)
            conn = await server.next()
            assert await conn.line() == '{"a":1}', reply
            assert not fut.done(), reply
            assert client.stats.protocol_errors == count, reply
        conn.ack(1)
        await asyncio.wait_for(fut, 5)
        stats = client.stats
        assert stats.acked == 1 and stats.rejected_total == 0
        assert await client.close() == 0


@async_test(30)
async def test_connect_after_close_raises_and_opens_nothing(workdir: Path) -> None:
    """connect() refused only a second call: after close() it opened a connection (and started
    keeping it) on a client that was closed, a socket nothing would release."""
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir))
        assert await client.close() == 0
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(client.connect(timeout=1), 5)
        with pytest.raises(asyncio.TimeoutError):
            await server.next(0.3)
        assert not client.connected


@async_test(30)
async def test_close_stops_a_connect_in_progress(workdir: Path) -> None:
    """close() while connect() retried on a missing socket returned at once, and connect() went
    on retrying: once the socket appeared, the closed client connected and kept the connection."""
    path = sock(workdir)
    client = IngestClient(path, reconnect_initial=0.01, reconnect_max=0.05)
    connecting = asyncio.ensure_future(client.connect(timeout=None))
    await await_until(lambda: client.stats.connect_failures >= 1, 5, "a failed attempt")
    assert await asyncio.wait_for(client.close(), 5) == 0
    async with FakeServer(path) as server:
        with pytest.raises(asyncio.TimeoutError):
            await server.next(0.5)  # no connection reaches the server
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(connecting, 5)
        assert not client.connected

    # Closed while waiting for the hello's ack: the socket is closed, connect() raises.
    async with FakeServer(path) as server:
        client = IngestClient(path, format="clob-ws-market")
        connecting = asyncio.ensure_future(client.connect(timeout=None))
        c = await server.next()
        assert await c.line() == HELLO
        assert await asyncio.wait_for(client.close(), 5) == 0
        assert await asyncio.wait_for(c.reader.readline(), 5) == b""  # closed by the client
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(connecting, 5)


@async_test(30)
async def test_a_mistyped_error_reply_is_a_protocol_error(workdir: Path) -> None:
    """An error reply whose reason was not a string ({"error":null}) was taken with str() for a
    final refusal for reason "None": the line failed (never resent) though no reason was given.
    The C++ client takes it for a protocol error; so does this one now, and a detail that is not
    a string too."""
    for bad in ({"error": None, "line": 1}, {"error": 5, "line": 1, "detail": "x"},
                {"error": "range", "line": 1, "detail": None}):
        async with FakeServer(sock(workdir)) as server:
            client = IngestClient(sock(workdir), reconnect_initial=0.01, reconnect_max=0.05)
            c1 = await server.connected(client)
            fut = client.submit({"a": 1})
            assert await c1.line() == '{"a":1}'
            c1.reply(bad)
            c1.ack(1)
            c2 = await server.next()                    # the connection was dropped
            assert await c2.line() == '{"a":1}', bad    # and the line sent again
            assert not fut.done(), bad
            stats = client.stats
            assert stats.protocol_errors == 1 and stats.rejected_total == 0, bad
            c2.ack(1)
            await asyncio.wait_for(fut, 5)
            assert await client.close() == 0
        if os.path.exists(sock(workdir)):  # Python >= 3.13 removes it itself
            os.unlink(sock(workdir))


@async_test(30)
async def test_a_reply_line_over_a_mebibyte_is_a_protocol_error(workdir: Path) -> None:
    """A reply line over the read limit (1 MiB) dropped the connection without counting it as a
    protocol error; the C++ client counts it (stats().protocol_errors), and so does this one."""
    async with FakeServer(sock(workdir)) as server:
        client = IngestClient(sock(workdir), reconnect_initial=0.01, reconnect_max=0.05)
        c1 = await server.connected(client)
        fut = client.submit({"a": 1})
        assert await c1.line() == '{"a":1}'
        c1.writer.write(b"x" * (2 << 20))  # 2 MiB, no newline
        c2 = await server.next()             # the connection was dropped
        assert await c2.line() == '{"a":1}'  # and the line sent again
        assert client.stats.protocol_errors == 1
        c2.ack(1)
        await asyncio.wait_for(fut, 5)
        assert await client.close() == 0
