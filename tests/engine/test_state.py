"""EngineState: export -> JSON -> restore -> continue gives the same results as never stopping."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from qkt.dsl.program import SizePosition, TimeInForce
from qkt.engine.config import EngineConfig
from qkt.engine.events import EngineEvent
from qkt.engine.protocols import MemoryJournal
from qkt.engine.state import STATE_VERSION, EngineState, StateError
from qkt.engine.strategy import StrategyEngine
from qkt.market.models import Candle
from tests.engine.builder import (
    D,
    ProgramBuilder,
    buy,
    candle,
    close,
    level,
    limit_at,
    sell,
    stop_at,
    trailing,
)

CONFIG = EngineConfig(fee_bps=D(4), slippage_bps=D(2))


def busy_program() -> ProgramBuilder:
    """Brackets, trailing exits, OCO, stop and DAY limit entries, SINCE OPEN, @open, @T-N,
    CROSSES and indicators on two symbols: every kind of state there is."""
    p = ProgramBuilder("busy")
    btc = p.stream("btc")
    eth = p.stream("eth", "SIM:ETHUSDT:1m")
    fast, slow = p.ema(btc.close, 5), p.ema(btc.close, 13)
    atr = p.atr(btc, 7)
    peak = p.agg("MAX", btc.high, "btc")
    entry = p.snap("px", btc.close, "OPEN", "btc")
    lag = p.snap("px", btc.close, "T", "btc", lag=3)
    flat = p.position("btc") == 0
    bracket = {"stop_loss": level("BY", atr * 2), "take_profit": level("RR", 2)}
    p.rule(p.crosses(fast, "ABOVE", slow) & flat, buy("btc", 1, **bracket))  # type: ignore[arg-type]
    p.rule(
        (p.position("btc") > 0) & ((btc.close < peak - atr * 3) | (btc.close < entry * D("0.97"))),
        close("btc"),
    )
    p.rule(
        p.crosses(fast, "BELOW", slow) & flat & (btc.close < lag),
        sell(
            "btc",
            1,
            order_type=limit_at(btc.close + atr),
            tif=TimeInForce.DAY,
            trailing_exit=trailing("0.01", percent=True),
        ),
    )
    rsi = p.rsi(eth.close, 5)
    p.rule(
        (rsi < 30) & (p.position("eth") == 0),
        buy("eth", 2, order_type=stop_at(eth.close * D("1.001"))),
    )
    p.rule(
        (rsi > 70) & (p.position("eth") > 0),
        sell("eth", sizing=SizePosition("eth"), oco=(eth.close * D("0.99"), eth.close * D("1.01"))),
    )
    return p


def market(n: int, seed: int = 11) -> list[Candle]:
    rng = np.random.default_rng(seed)
    out: list[Candle] = []
    prices = {"SIM:BTCUSDT:1m": 100.0, "SIM:ETHUSDT:1m": 50.0}
    for i in range(n):
        for key in prices:
            start = prices[key]
            end = max(1.0, start + rng.normal(0, start * 0.004))
            high = max(start, end) + abs(rng.normal(0, start * 0.002))
            low = min(start, end) - abs(rng.normal(0, start * 0.002))
            prices[key] = end
            out.append(candle(i, *(f"{v:.2f}" for v in (start, high, low, end)), key=key))
    return out


def rendered(events: list[EngineEvent]) -> list[dict[str, Any]]:
    return [event.to_json() for event in events]


def drive(engine: StrategyEngine, candles: list[Candle]) -> list[EngineEvent]:
    events: list[EngineEvent] = []
    for bar in candles:
        events += engine.on_candle(bar)
    return events


def test_export_restore_continue_equals_never_stopping() -> None:
    program = busy_program().build()
    candles = market(700)
    whole = StrategyEngine(program, CONFIG, MemoryJournal())
    reference = rendered(drive(whole, candles))
    assert sum(1 for e in reference if e["type"] == "trade") > 40

    interesting = 0
    for cut in range(100, len(candles), 97):
        first = StrategyEngine(program, CONFIG, MemoryJournal())
        before = rendered(drive(first, candles[:cut]))
        exported = first.export_state()
        interesting += bool(exported.broker["orders"]) and bool(exported.portfolio["positions"])
        text = json.dumps(exported.to_json())  # really plain JSON
        state = EngineState.from_json(json.loads(text))
        second = StrategyEngine(program, CONFIG, MemoryJournal(), state)
        after = rendered(drive(second, candles[cut - 5 :]))  # an overlapping replay is ignored
        assert before + after == reference, f"diverged after a restart at candle {cut}"
        assert second.account == whole.account
        assert second.open_orders == whole.open_orders
        assert second.trade_count == whole.trade_count
    assert interesting >= 3  # cuts with resting orders and open positions were exercised


def test_state_json_carries_its_version_and_refuses_others() -> None:
    engine = StrategyEngine(busy_program().build(), CONFIG)
    drive(engine, market(50))
    data = engine.export_state().to_json()
    assert data["version"] == STATE_VERSION
    assert json.loads(json.dumps(data)) == data
    with pytest.raises(StateError, match="version 99 is not supported"):
        EngineState.from_json({**data, "version": 99})
    with pytest.raises(StateError, match="incomplete"):
        EngineState.from_json({"version": STATE_VERSION})
    with pytest.raises(StateError, match="JSON object"):
        EngineState.from_json([1, 2])


def test_a_changed_program_keeps_positions_and_stops_and_starts_cold() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 1, stop_loss=level("BY", 5)))
    engine = StrategyEngine(p.build(), CONFIG)
    engine.on_candle(candle(0, 100))
    state = EngineState.from_json(json.loads(json.dumps(engine.export_state().to_json())))

    edited = ProgramBuilder()
    btc = edited.stream("btc")
    edited.rule(btc.close > edited.ema(btc.close, 3), buy("btc", 1))
    restarted = StrategyEngine(edited.build(), EngineConfig(balance=Decimal(5)), None, state)
    assert restarted.positions == engine.positions
    assert restarted.open_orders == engine.open_orders
    assert restarted.account.start_balance == 10_000  # the account keeps its base
    assert not restarted.warm
    events = restarted.on_candle(candle(1, 101, 101, 94, 96))
    assert "the strategy changed since its state was saved" in events[0].to_json()["message"]
    assert [e.to_json()["role"] for e in events if e.type == "trade"] == ["STOP_LOSS"]
