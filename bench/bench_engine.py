"""Candles per second through `StrategyEngine.on_candle` for a typical strategy: dsl.md's
EMA(12)/EMA(26) crossover with an RSI filter on an hourly stream and a bracket
(`STOP LOSS PCT 0.02, TAKE PROFIT RR 2`), on a seeded random walk of 1m candles."""

from __future__ import annotations

import random
import time
from decimal import Decimal

from qkt.dsl.nodes import Span
from qkt.dsl.program import (
    Bracket,
    CloseAction,
    Compare,
    CompiledCrosses,
    CompiledRule,
    Const,
    ExitLevel,
    FieldRef,
    IndicatorCall,
    Logic,
    MarketOrder,
    OrderAction,
    PositionRef,
    Program,
    SizeQuantity,
    StreamDecl,
    TimeInForce,
)
from qkt.engine.config import EngineConfig
from qkt.engine.protocols import MemoryJournal
from qkt.engine.strategy import StrategyEngine
from qkt.market.models import Candle, CandleKey

MINUTE = CandleKey.parse("SIM:BTCUSDT:1m")
HOUR = CandleKey.parse("SIM:BTCUSDT:1h")
CANDLES = 100_000


def ema_cross_program() -> Program:
    """The strategy at the top of dsl.md, compiled by hand."""
    close = FieldRef("btc", "close")
    fast = IndicatorCall(0, "EMA", close, 12, "btc")
    slow = IndicatorCall(1, "EMA", close, 26, "btc")
    rsi = IndicatorCall(2, "RSI", FieldRef("btc_1h", "close"), 14, "btc_1h")
    flat = Compare("==", PositionRef("btc"), Const(Decimal(0)))
    long = Compare(">", PositionRef("btc"), Const(Decimal(0)))
    enter = Logic(
        "AND",
        Logic("AND", CompiledCrosses(3, "ABOVE", fast, slow), flat),
        Compare("<", rsi, Const(Decimal(70))),
    )
    leave = Logic("AND", CompiledCrosses(4, "BELOW", fast, slow), long)
    bracket = Bracket(ExitLevel("PCT", Const(Decimal("0.02"))), ExitLevel("RR", Const(Decimal(2))))
    buy = OrderAction(
        "BUY",
        "btc",
        SizeQuantity(Const(Decimal("0.01"))),
        MarketOrder(),
        TimeInForce.GTC,
        bracket,
        None,
        None,
    )
    return Program(
        name="ema_cross",
        version=2,
        path="ema_cross.qkt",
        streams=(
            StreamDecl("btc", MINUTE, Span(9, 5)),
            StreamDecl("btc_1h", HOUR, Span(10, 5)),
        ),
        rules=(
            CompiledRule(0, "btc", enter, buy, Span(16, 5), "fast CROSSES ABOVE slow ..."),
            CompiledRule(
                1, "btc", leave, CloseAction("btc"), Span(19, 5), "fast CROSSES BELOW slow ..."
            ),
        ),
        slot_count=5,
    )


def market(n: int, seed: int = 1) -> list[Candle]:
    """n 1m candles and the 1h candles they make, in the order a hub would publish them."""
    rng = random.Random(seed)
    out: list[Candle] = []
    price = 30_000.0
    start = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    hour: list[Decimal] = []
    for i in range(n):
        move = rng.gauss(0.0, 0.0015) * price
        o, c = price, max(1.0, price + move)
        h, lo = (
            max(o, c) * (1 + abs(rng.gauss(0, 0.0005))),
            min(o, c) * (1 - abs(rng.gauss(0, 0.0005))),
        )
        bar = [Decimal(f"{v:.2f}") for v in (o, h, lo, c)]
        out.append(Candle(MINUTE, start + i * 60_000, *bar, Decimal(1)))
        hour.append(bar[1])
        hour.append(bar[2])
        if (i + 1) % 60 == 0:
            first = out[-60]
            out.append(
                Candle(HOUR, first.open_ms, first.open, max(hour), min(hour), bar[3], Decimal(60))
            )
            hour.clear()
        price = c
    return out


def main() -> None:
    candles = market(CANDLES)
    engine = StrategyEngine(ema_cross_program(), EngineConfig(fee_bps=Decimal(6)), MemoryJournal())
    started = time.perf_counter()
    events = 0
    for bar in candles:
        events += len(engine.on_candle(bar))
    elapsed = time.perf_counter() - started
    print(f"candles:        {len(candles)} (1m + 1h), {engine.trade_count} fills, {events} events")
    print(f"elapsed:        {elapsed:.2f} s")
    print(f"throughput:     {len(candles) / elapsed:,.0f} candles/s")
    print(f"per candle:     {elapsed / len(candles) * 1e6:.1f} us")
    print(f"final equity:   {engine.account.equity}")


if __name__ == "__main__":
    main()
