"""Per-candle cost of every indicator of the catalog at its default parameters: the float
update alone, and the update as the engine does it (a slot: the candle's Decimals to floats, the
output back to a 16-digit Decimal). Prints the markdown table of docs/performance.md."""

from __future__ import annotations

import random
import time
from decimal import Decimal

from qkt.dsl.catalog import INDICATORS, Args, Spec
from qkt.dsl.program import CandleRef, FieldRef, IndicatorCall
from qkt.engine.indicators import Bar, make_indicator
from qkt.engine.slots import IndicatorSlot
from qkt.market.models import Candle, CandleKey

CANDLES = 20_000
KEY = CandleKey.parse("SIM:BTCUSDT:1m")


def _candles(n: int) -> list[Candle]:
    rng = random.Random(1)
    price, out = 100.0, []
    for i in range(n):
        step = rng.gauss(0.0, 1.0)
        close = max(1.0, price + step)
        high, low = max(price, close) + rng.random(), min(price, close) - rng.random()
        out.append(
            Candle(
                KEY,
                i * 60_000,
                Decimal(f"{price:.2f}"),
                Decimal(f"{high:.2f}"),
                Decimal(f"{low:.2f}"),
                Decimal(f"{close:.2f}"),
                Decimal(f"{rng.uniform(1, 100):.3f}"),
            )
        )
        price = close
    return out


def _raw_us(spec: Spec, bars: list[Bar]) -> float:
    indicator = make_indicator(spec.name, Args(tuple(p.default for p in spec.params)))
    start = time.perf_counter()
    if spec.input == "candle":
        for bar in bars:
            indicator.update_candle(bar)
    elif spec.input == "series":
        for bar in bars:
            indicator.update(bar.close)
    else:
        for bar in bars:
            indicator.update_pair(bar.close, bar.open)
    return (time.perf_counter() - start) * 1e6 / len(bars)


def _slot_us(spec: Spec, candles: list[Candle]) -> float | None:
    if spec.input == "two series":
        return None  # fed through the evaluator for its second series: see bench_engine
    source = CandleRef("btc") if spec.input == "candle" else FieldRef("btc", "close")
    node = IndicatorCall(
        0,
        spec.name,
        source,
        0,
        "btc",
        params=tuple(p.default for p in spec.params),
        output=spec.outputs[0] if spec.outputs else None,
    )
    slot = IndicatorSlot(node)
    start = time.perf_counter()
    if spec.input == "candle":
        for candle in candles:
            slot.feed_candle(candle)
    else:
        for candle in candles:
            slot.feed(float(candle.close))
    return (time.perf_counter() - start) * 1e6 / len(candles)


def main() -> None:
    candles = _candles(CANDLES)
    bars = [
        Bar(float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume), c.open_ms)
        for c in candles
    ]
    print(f"per-candle cost over {CANDLES:,} candles, default parameters (µs)")
    print("| indicator | update | in a slot |")
    print("|---|---:|---:|")
    for spec in INDICATORS.values():
        raw = _raw_us(spec, bars)
        slot = _slot_us(spec, candles)
        shown = "-" if slot is None else f"{slot:.2f}"
        print(f"| {spec.name} | {raw:.2f} | {shown} |")


if __name__ == "__main__":
    main()
