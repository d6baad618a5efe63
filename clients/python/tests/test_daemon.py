"""The client against the real pm-ingestd (default format), rows checked in PostgreSQL."""

from __future__ import annotations

import asyncio
import decimal
import time
from typing import Dict, List, Optional, Set

import pytest

from conftest import Daemon, Database, async_test, await_until, f32, psql, wait_until

import pm_ingestd
from pm_ingestd import (IngestClient, ParseError, RangeError, SchemaError, TimestampUnitsError,
                        TooLongError, encode_line, trade_event, trigger_event)

NOW_S = int(time.time()) - 3600          # event times an hour ago: inside the daemon's window
NOW_MS = NOW_S * 1000 + 123


def trade_rows(db: Database) -> Dict[str, Dict[str, Optional[str]]]:
    rows = psql(db.url, "SELECT * FROM polymarket_trades")
    return {r["trade_id"] or "": r for r in rows}


def expect_trade(row: Dict[str, Optional[str]], *, condition_id: str, token_id: Optional[str],
                 price: object, size: object, side: str, timestamp_ms: int,
                 outcome: Optional[str], outcome_index: Optional[int], raw_json: str) -> None:
    assert row["condition_id"] == condition_id
    assert row["token_id"] == token_id
    assert f32(row["price"]) == f32(price)  # type: ignore[arg-type]
    assert f32(row["size"]) == f32(size)  # type: ignore[arg-type]
    assert row["side"] == side
    assert int(row["timestamp"] or 0) == timestamp_ms  # the daemon stores milliseconds
    assert row["outcome"] == outcome
    assert row["outcome_index"] == (None if outcome_index is None else str(outcome_index))
    assert row["raw_json"] == raw_json


@async_test()
async def test_sends_resolve_when_durable_and_rows_match(daemon: Daemon, database: Database) -> None:
    trades = [
        dict(condition_id="0xcond-a", trade_id="t-seconds", token_id="tok-yes", price=0.953,
             size=12.5, side="buy", timestamp=NOW_S),
        dict(condition_id="0xcond-a", trade_id="t-ms", token_id="tok-no", price="0.25",
             size=decimal.Decimal("1000.125"), side="SELL", timestamp_ms=NOW_MS,
             outcome="No", outcome_index=1, raw_json={"id": "t-ms", "note": "ünïcode ✓"}),
        dict(condition_id="0xcond-b", trade_id="t-no-token", token_id=None, price=1, size=0,
             side="Buy", timestamp=NOW_S + 1, outcome="Yes", outcome_index=0),
    ]
    triggers = [
        dict(token_id="tok-yes", condition_id="0xcond-a", threshold=0.95, trigger_timestamp=NOW_MS,
             price=0.96, size=3.5, model_score=0.875, model_version="m-7", outcome="Yes",
             outcome_index=0),
        dict(token_id="tok-yes", condition_id="0xcond-b", threshold="0.5",
             trigger_timestamp=NOW_MS + 1),
    ]
    async with IngestClient(daemon.socket) as client:
        for t in trades:
            fut = asyncio.ensure_future(client.send_trade(**t))  # type: ignore[arg-type]
            assert not fut.done()
            assert await fut is None
        await asyncio.gather(*(client.send_trigger(**t) for t in triggers))  # type: ignore[arg-type]
        # Duplicates: the same trade again (alone and twice at once), a trigger of another token
        # for the same (condition, threshold) (G2): acknowledged, not stored again.
        await client.send_trade(**trades[0])  # type: ignore[arg-type]
        await asyncio.gather(client.send_trade(**trades[1]), client.send_trade(**trades[1]))  # type: ignore[arg-type]
        await client.send_trigger(token_id="tok-other", condition_id="0xcond-a", threshold=0.95,
                                  trigger_timestamp=NOW_MS + 5, price=0.5)
        stats = client.stats
    assert stats.sent == 9 and stats.acked == 9 and stats.rejected_total == 0
    assert stats.resends == 0 and stats.reconnects == 0 and stats.in_flight == 0

    # Resolved means durable: kill -9 right away; the restarted daemon applies its log.
    daemon.kill9()
    daemon.start()
    wait_until(lambda: database.count("SELECT count(*) FROM polymarket_trades") >= 3, 30,
               "the trades in PostgreSQL")
    wait_until(lambda: database.count("SELECT count(*) FROM polymarket_first_triggers") >= 2, 30,
               "the triggers in PostgreSQL")

    rows = trade_rows(database)
    assert sorted(rows) == ["t-ms", "t-no-token", "t-seconds"]
    assert database.count("SELECT count(*) FROM polymarket_trades") == 3
    expect_trade(rows["t-seconds"], condition_id="0xcond-a", token_id="tok-yes", price=0.953,
                 size=12.5, side="BUY", timestamp_ms=NOW_S * 1000, outcome=None,
                 outcome_index=None, raw_json=encode_line(trade_event(**trades[0])))  # type: ignore[arg-type]
    expect_trade(rows["t-ms"], condition_id="0xcond-a", token_id="tok-no", price=0.25,
                 size=1000.125, side="SELL", timestamp_ms=NOW_MS, outcome="No", outcome_index=1,
                 raw_json='{"id":"t-ms","note":"ünïcode ✓"}')
    expect_trade(rows["t-no-token"], condition_id="0xcond-b", token_id=None, price=1, size=0,
                 side="BUY", timestamp_ms=(NOW_S + 1) * 1000, outcome="Yes", outcome_index=0,
                 raw_json=encode_line(trade_event(**trades[2])))  # type: ignore[arg-type]

    trig = {(r["condition_id"], f32(r["threshold"])): r  # type: ignore[arg-type]
            for r in psql(database.url, "SELECT * FROM polymarket_first_triggers")}
    assert len(trig) == 2
    a = trig[("0xcond-a", f32(0.95))]
    assert a["token_id"] == "tok-yes"  # the first one, not tok-other's (G2)
    assert int(a["trigger_timestamp"] or 0) == NOW_MS
    assert f32(a["price"]) == f32(0.96) and f32(a["size"]) == f32(3.5)
    assert f32(a["model_score"]) == f32(0.875)
    assert a["model_version"] == "m-7" and a["outcome"] == "Yes" and a["outcome_index"] == "0"
    assert a["created_at"]
    b = trig[("0xcond-b", f32(0.5))]
    assert b["token_id"] == "tok-yes" and int(b["trigger_timestamp"] or 0) == NOW_MS + 1
    for column in ("price", "size", "model_score", "model_version", "outcome", "outcome_index"):
        assert b[column] is None, column


@async_test()
async def test_refused_lines_raise_typed_errors_and_neighbours_succeed(daemon: Daemon,
                                                                       database: Database) -> None:
    def good(n: int) -> Dict[str, object]:
        return trade_event(condition_id="0xc", trade_id=f"good-{n}", token_id="tok", price=0.5,
                           size=1, side="BUY", timestamp=NOW_S)

    bad_price = trade_event(condition_id="0xc", trade_id="bad-price", token_id="tok", price=2.0,
                            size=1, side="BUY", timestamp=NOW_S)
    missing = {"type": "trade", "condition_id": "0xc", "price": 0.5, "size": 1, "side": "BUY",
               "timestamp": NOW_S}  # no trade_id
    ms_as_seconds = trade_event(condition_id="0xc", trade_id="bad-units", token_id="tok",
                                price=0.5, size=1, side="BUY", timestamp=NOW_MS)
    bad_side = trade_event(condition_id="0xc", trade_id="bad-side", token_id="tok", price=0.5,
                           size=1, side="HOLD", timestamp=NOW_S)
    nan = dict(good(99), trade_id="bad-nan", price=float("nan"))  # json.dumps writes NaN
    too_long = dict(good(98), trade_id="bad-long", raw_json="x" * (1024 * 1024 + 10))
    trigger_seconds = trigger_event(token_id="tok", condition_id="0xc", threshold=0.5,
                                    trigger_timestamp=NOW_S)

    sends = [good(1), bad_price, good(2), missing, good(3), ms_as_seconds, bad_side, nan,
             too_long, trigger_seconds, good(4)]
    expected = [None, RangeError, None, SchemaError, None, TimestampUnitsError, RangeError,
                ParseError, TooLongError, TimestampUnitsError, None]
    async with IngestClient(daemon.socket) as client:
        results = await asyncio.gather(*(client.send_raw(s) for s in sends),
                                       return_exceptions=True)
        for sent, want, got in zip(sends, expected, results):
            if want is None:
                assert got is None, f"{sent}: {got!r}"
                continue
            assert type(got) is want, f"{str(sent)[:100]}: {got!r}"
            assert isinstance(got, pm_ingestd.RejectedError)
            assert got.reason == want.reason_name and got.detail
            assert got.line == encode_line(sent)
            assert got.line_number is not None and got.line_number >= 1
        # A send_trade with a millisecond value in `timestamp` raises too.
        with pytest.raises(TimestampUnitsError) as info:
            await client.send_trade(condition_id="0xc", trade_id="x", token_id=None, price=0.1,
                                    size=1, side="SELL", timestamp=NOW_MS)
        assert "timestamp_ms" in info.value.detail
        stats = client.stats
    assert stats.acked == 4
    assert stats.rejected == {"range": 2, "schema": 1, "timestamp_units": 3, "parse": 1,
                              "too_long": 1}
    wait_until(lambda: database.count("SELECT count(*) FROM polymarket_trades") >= 4, 30,
               "the good trades in PostgreSQL")
    assert sorted(database.trade_ids()) == ["good-1", "good-2", "good-3", "good-4"]
    assert database.count("SELECT count(*) FROM polymarket_first_triggers") == 0


@async_test(timeout=240)
async def test_kill_nine_mid_stream_every_send_resolves_and_is_stored_once(
        daemon: Daemon, database: Database) -> None:
    total = 8000
    resolved: List[str] = []

    async def send(client: IngestClient, n: int) -> str:
        trade_id = f"k{n:05d}"
        await client.send_trade(condition_id=f"0xkill{n % 7}", trade_id=trade_id,
                                token_id="tok", price=0.5, size=n, side="BUY",
                                timestamp=NOW_S + n % 100)
        resolved.append(trade_id)
        return trade_id

    loop = asyncio.get_running_loop()
    client = IngestClient(daemon.socket, max_in_flight=1000, reconnect_initial=0.02,
                          reconnect_max=0.5)
    await client.connect()
    everything = asyncio.gather(*(send(client, n) for n in range(total)))
    await await_until(lambda: len(resolved) >= 1500, 60, "1,500 sends resolved before the kill")
    daemon.kill9()
    acked_before_kill: Set[str] = set(resolved)
    assert 1500 <= len(acked_before_kill) < total, "the kill must come mid-stream"
    await await_until(lambda: not client.connected, 10, "the client to notice the kill")
    await loop.run_in_executor(None, daemon.start)
    results = await asyncio.wait_for(everything, 120)
    stats = client.stats
    assert await client.close() == 0

    assert len(results) == total and len(set(resolved)) == total
    assert stats.acked == total and stats.rejected_total == 0
    assert stats.reconnects >= 1 and stats.resends > 0
    assert stats.sent == total
    wait_until(lambda: database.count("SELECT count(*) FROM polymarket_trades") >= total, 60,
               f"{total} trades in PostgreSQL")
    stored = database.trade_ids()
    assert len(stored) == total == len(set(stored)), "each acknowledged trade exactly once"
    assert set(stored) == set(results)
    assert acked_before_kill <= set(stored)
    # Each log record applied once, not merely deduplicated by the primary key.
    row = psql(database.url, "SELECT lsn, applied_events FROM pm_ingest_checkpoints")
    assert len(row) == 1 and row[0]["lsn"] == row[0]["applied_events"]


@async_test(timeout=240)
async def test_busy_is_retried_until_the_daemon_can_take_the_lines(
        make_daemon, database: Database) -> None:
    unreachable = "postgresql://x@127.0.0.1:1/none"
    d: Daemon = make_daemon(unreachable, ["--wal-max-bytes", "64K", "--shutdown-timeout", "3"])
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, d.start)
    total = 3000  # ~200 bytes a line: several times the 64 KiB budget
    # The daemon checks its budget per chunk read (up to 256 KiB): a chunk that does not fit
    # is refused whole. 100 lines in flight (~20 KiB) let the budget fill chunk by chunk.
    client = IngestClient(d.socket, max_in_flight=100, busy_initial=0.01, busy_max=0.2,
                          reconnect_initial=0.02, reconnect_max=0.5)
    await client.connect()
    sends = [asyncio.ensure_future(client.send_trade(
        condition_id="0xbusy", trade_id=f"b{n:05d}", token_id="tok", price=0.5, size=1,
        side="SELL", timestamp=NOW_S)) for n in range(total)]
    await await_until(lambda: client.stats.busy >= 50, 60, "busy replies")
    assert not [s for s in sends if s.done() and s.exception() is not None], \
        "busy must be retried, not raised"
    acked_while_busy = client.stats.acked
    assert 0 < acked_while_busy < total
    # The budget stays used up while PostgreSQL is away: busy replies go on, nothing completes.
    busy_before = client.stats.busy
    await await_until(lambda: client.stats.busy > busy_before + 20, 30, "more busy replies")
    assert client.stats.acked == acked_while_busy

    rc = await loop.run_in_executor(None, d.stop)
    assert rc == 0, d.log()
    await loop.run_in_executor(None, lambda: d.start(database_url=database.url,
                                                     extra_args=["--wal-max-bytes", "64K"]))
    await asyncio.wait_for(asyncio.gather(*sends), 120)
    stats = client.stats
    assert await client.close() == 0
    assert stats.acked == total and stats.rejected_total == 0 and stats.resends > 0
    wait_until(lambda: database.count("SELECT count(*) FROM polymarket_trades") >= total, 60,
               f"{total} trades in PostgreSQL")
    assert database.count("SELECT count(DISTINCT trade_id) FROM polymarket_trades") == total
