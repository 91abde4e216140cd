"""Order independence (issue 18): every candle of one close instant is applied before any rule of
that instant runs, so the order of the SYMBOLS declarations never changes a fill."""

from __future__ import annotations

import itertools
import math
import random
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qkt.dsl import compile_source
from qkt.engine import EngineConfig, StrategyEngine
from qkt.market.replay import replay_candles
from qkt.worker.backtest import run_backtest

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def write_minutes(path: Path, seed: int, count: int = 240) -> list[Decimal]:
    """A seeded random walk of `count` 1m candles; returns the closes."""
    rng = random.Random(seed)
    price, previous = 100.0, Decimal("100.00")
    closes = []
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(count):
        price = max(5.0, price + rng.gauss(0, 0.8) + 0.5 * math.sin(i / 7 + seed))
        close = Decimal(f"{price:.2f}")
        high, low = max(previous, close) + Decimal("0.1"), min(previous, close) - Decimal("0.1")
        lines.append(f"{T0 + i * MINUTE},{previous},{high},{low},{close},1")
        closes.append(close)
        previous = close
    path.write_text("\n".join(lines) + "\n")
    return closes


def _strategy(order: list[int]) -> str:
    aliases = ("btc", "eth", "sol")
    streams = ", ".join(f"{aliases[i]} = BACKTEST:{SYMBOLS[i]} EVERY 1m" for i in order)
    return (
        f"STRATEGY perm VERSION 1\nSYMBOLS {streams}\nRULES\n"
        "WHEN POSITION.btc == 0 AND btc.close > SMA(btc.close, 5) THEN BUY btc SIZING 1\n"
        "WHEN POSITION.eth == 0 AND eth.close < SMA(eth.close, 5) THEN SELL eth SIZING 2\n"
        "WHEN POSITION.sol == 0 AND sol.close > SMA(sol.close, 8) THEN BUY sol SIZING 1 "
        "BRACKET { STOP LOSS PCT 0.01, TAKE PROFIT PCT 0.01 }\n"
        # A rule reading ETH whose action closes everything: it must see every symbol's candle
        # of its instant, whichever stream it belongs to.
        "WHEN eth.close > SMA(eth.close, 10) * 1.004 THEN CLOSE_ALL\n"
    )


def _fills(folder: Path, order: list[int]) -> list[tuple[int, str, str, Decimal, Decimal]]:
    program = compile_source(_strategy(order), "perm.qkt")
    result = run_backtest(program, folder, EngineConfig(fee_bps=Decimal(5)))
    return [(f.ts, f.instrument.symbol, f.side.value, f.qty, f.price) for f in result.fills]


@settings(max_examples=12, deadline=None)
@given(order=st.permutations([0, 1, 2]), seed=st.integers(0, 10_000))
def test_permuting_symbols_never_changes_fills(
    tmp_path_factory: pytest.TempPathFactory, order: list[int], seed: int
) -> None:
    folder = tmp_path_factory.mktemp("data")
    for i, symbol in enumerate(SYMBOLS):
        write_minutes(folder / f"{symbol}.csv", seed + i)
    reference = _fills(folder, [0, 1, 2])
    assert reference  # the strategy trades, or the comparison proves nothing
    assert _fills(folder, list(order)) == reference


def test_close_all_on_eth_closes_btc_at_btcs_close_of_that_instant(tmp_path: Path) -> None:
    """The reproduction: BTC declared first, a rule on ETH ending in CLOSE_ALL. ETH's position
    was closed at ETH's *previous* close, because the rule ran on BTC's candle before ETH's
    candle of the same instant had been applied; declaring ETH first gave another fill."""
    btc = write_minutes(tmp_path / "BTCUSDT.csv", 1, count=30)
    eth = write_minutes(tmp_path / "ETHUSDT.csv", 2, count=30)
    close_at = 20  # minute index whose close triggers CLOSE_ALL
    trigger = T0 + (close_at + 1) * MINUTE
    fills_by_order = []
    for streams in (
        "btc = BACKTEST:BTCUSDT EVERY 1m, eth = BACKTEST:ETHUSDT EVERY 1m",
        "eth = BACKTEST:ETHUSDT EVERY 1m, btc = BACKTEST:BTCUSDT EVERY 1m",
    ):
        program = compile_source(
            f"STRATEGY repro VERSION 1\nSYMBOLS {streams}\nRULES\n"
            "WHEN POSITION.btc == 0 THEN BUY btc SIZING 1\n"
            "WHEN POSITION.eth == 0 THEN BUY eth SIZING 1\n"
            f"WHEN eth.close == {eth[close_at]} THEN CLOSE_ALL\n",
            "repro.qkt",
        )
        result = run_backtest(program, tmp_path, EngineConfig())
        closing = [f for f in result.fills if f.ts == trigger and f.side.value == "SELL"]
        prices = {f.instrument.symbol: f.price for f in closing}
        assert prices == {"BTCUSDT": btc[close_at], "ETHUSDT": eth[close_at]}
        fills_by_order.append([(f.ts, f.instrument.symbol, f.side, f.price) for f in result.fills])
    assert fills_by_order[0] == fills_by_order[1]


def test_the_equity_curve_is_the_engines_equity_after_every_instant(tmp_path: Path) -> None:
    """The backtest marks positions itself between fills (cheaper than asking the engine for an
    Account per candle): it must agree with the engine's own account to the last digit."""
    for i, symbol in enumerate(SYMBOLS):
        write_minutes(tmp_path / f"{symbol}.csv", 40 + i)
    program = compile_source(_strategy([2, 0, 1]), "perm.qkt")
    config = EngineConfig(fee_bps=Decimal(5))
    result = run_backtest(program, tmp_path, config)
    engine = StrategyEngine(program, config)
    expected = []
    for _, instant in itertools.groupby(
        replay_candles(tmp_path, program.keys), key=lambda candle: candle.end_ms
    ):
        engine.on_instant(list(instant))
        expected.append(engine.account.equity)
    assert len(result.fills) > 10
    assert result.curve.equity == expected
    assert result.summary.equity == expected[-1]
