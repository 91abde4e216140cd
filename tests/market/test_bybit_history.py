"""BybitHistory against the fake exchange's REST route: pages, row order, errors, rate limits."""

from __future__ import annotations

import asyncio
import socket
import time
from decimal import Decimal

import pytest

from qkt.market.budget import RequestBudget
from qkt.market.bybit_rest import BybitHistory
from qkt.market.feed import FeedOptions
from qkt.market.history import HistoryError, fetch_all
from qkt.market.models import Candle, CandleKey
from tests.fakes.bybit_exchange import FakeBybit, KlineRow, fake_bybit, walk_rows

BTC_1M = CandleKey.parse("BYBIT:BTCUSDT:1m")
MINUTE = 60_000


def _now_bucket() -> int:
    now = time.time_ns() // 10**6
    return now - now % MINUTE


def _source(fake: FakeBybit, broker: str = "BYBIT", **options: float) -> BybitHistory:
    settings = FeedOptions(bybit_rest_url=fake.rest_url, rest_backoff_s=0.01, **options)  # type: ignore[arg-type]
    return BybitHistory(settings, broker, budget=RequestBudget(1000, 1.0))


def _as_rows(candles: list[Candle]) -> list[KlineRow]:
    return [
        (c.open_ms, str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume))
        for c in candles
    ]


def _fetch(source: BybitHistory, key: CandleKey, start: int, end: int) -> list[Candle]:
    async def run() -> list[Candle]:
        try:
            return await fetch_all(source, key, start, end)
        finally:
            await source.aclose()

    return asyncio.run(asyncio.wait_for(run(), timeout=60))


def test_pages_of_1000_newest_first_rows_reversed_and_the_forming_candle_dropped() -> None:
    end = _now_bucket()
    rows = walk_rows(end - 2_500 * MINUTE, 2_500)
    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", rows)
        fake.set_forming("BTCUSDT", (end, "1", "2", "0.5", "1.5", "9"))  # still open
        got = _fetch(_source(fake), BTC_1M, end - 2_500 * MINUTE, end + MINUTE)
        queries = fake.rest_requests
    assert _as_rows(got) == rows
    assert len(queries) == 3
    for query in queries:
        assert query["category"] == "spot" and query["symbol"] == "BTCUSDT"
        assert query["interval"] == "1" and int(query["limit"]) <= 1000
        span = (int(query["end"]) - int(query["start"]) + 1) // MINUTE
        assert span <= 1000  # a window never holds more rows than one page


def test_a_local_clock_ahead_of_the_exchange_does_not_take_a_forming_candle_as_closed() -> None:
    end = _now_bucket()
    rows = walk_rows(end - 10 * MINUTE, 10)
    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", rows)
        fake.rest_clock_offset_ms = -3 * MINUTE  # at the exchange, the last 3 are still forming
        got = _fetch(_source(fake), BTC_1M, end - 10 * MINUTE, end)
    assert _as_rows(got) == rows[:-3]


def test_linear_keys_ask_the_linear_category() -> None:
    end = _now_bucket()
    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", walk_rows(end - 10 * MINUTE, 10), category="linear")
        key = CandleKey.parse("BYBIT_LINEAR:BTCUSDT:1m")
        got = _fetch(_source(fake, "BYBIT_LINEAR"), key, end - 10 * MINUTE, end)
        assert {q["category"] for q in fake.rest_requests} == {"linear"}
    assert len(got) == 10


def test_a_ret_code_error_is_a_history_error_with_bybits_message() -> None:
    end = _now_bucket()
    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", walk_rows(end - 10 * MINUTE, 10))
        fake.fail_rest(10001, "params error")
        with pytest.raises(HistoryError, match="params error") as failed:
            _fetch(_source(fake), BTC_1M, end - 10 * MINUTE, end)
        assert failed.value.permanent
        unknown = CandleKey.parse("BYBIT:NOPEUSDT:1m")
        with pytest.raises(HistoryError, match="Not supported symbols"):
            _fetch(_source(fake), unknown, end - 10 * MINUTE, end)


@pytest.mark.parametrize("http_403", [False, True])
def test_rate_limit_replies_back_off_and_retry(http_403: bool) -> None:
    end = _now_bucket()
    rows = walk_rows(end - 10 * MINUTE, 10)
    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", rows)
        fake.rate_limit_rest(times=2, http_403=http_403)
        budget = RequestBudget(1000, 1.0)
        options = FeedOptions(bybit_rest_url=fake.rest_url, rest_backoff_s=0.01)
        got = _fetch(BybitHistory(options, "BYBIT", budget), BTC_1M, end - 10 * MINUTE, end)
        assert len(fake.rest_requests) == 3
    assert _as_rows(got) == rows
    assert budget.taken == 3


def test_retries_are_bounded() -> None:
    end = _now_bucket()
    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", walk_rows(end - 10 * MINUTE, 10))
        fake.rate_limit_rest(times=10)
        with pytest.raises(HistoryError, match="rate limit.*3 attempts"):
            _fetch(_source(fake, rest_retries=2), BTC_1M, end - 10 * MINUTE, end)
        assert len(fake.rest_requests) == 3


def test_an_unreachable_host_is_a_history_error_not_a_hang() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nobody listens there
    options = FeedOptions(
        bybit_rest_url=f"http://127.0.0.1:{port}", rest_retries=1, rest_backoff_s=0.01
    )
    source = BybitHistory(options, "BYBIT", budget=RequestBudget(1000, 1.0))
    end = _now_bucket()
    with pytest.raises(HistoryError, match="cannot reach Bybit"):
        _fetch(source, BTC_1M, end - 10 * MINUTE, end)


def test_two_minute_candles_are_built_from_one_minute_rows_and_seconds_are_refused() -> None:
    end = _now_bucket() // (2 * MINUTE) * (2 * MINUTE)
    rows = walk_rows(end - 20 * MINUTE, 20)
    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", rows)
        key = CandleKey.parse("BYBIT:BTCUSDT:2m")
        got = _fetch(_source(fake), key, end - 20 * MINUTE, end)
        assert {q["interval"] for q in fake.rest_requests} == {"1"}
        with pytest.raises(HistoryError, match="shortest interval is 1m") as refused:
            _fetch(_source(fake), CandleKey.parse("BYBIT:BTCUSDT:30s"), end - MINUTE, end)
        assert refused.value.permanent
    assert [c.open_ms for c in got] == [end - 20 * MINUTE + i * 2 * MINUTE for i in range(10)]
    first = got[0]
    assert first.open == Decimal(rows[0][1]) and first.close == Decimal(rows[1][4])
    assert first.high == max(Decimal(rows[0][2]), Decimal(rows[1][2]))
    assert first.volume == Decimal(rows[0][5]) + Decimal(rows[1][5])


def test_the_budget_counts_and_pauses() -> None:
    budget = RequestBudget(2, 10.0)
    asyncio.run(budget.take())
    asyncio.run(budget.take())
    assert budget.taken == 2
    assert budget.wait_s() > 0  # out of tokens: the next one waits for the refill
    fresh = RequestBudget(100, 1.0)
    fresh.pause(30)
    assert fresh.wait_s() > 20
