"""The engine: incremental indicators, rules, paper broker and portfolio (pure, no I/O).

A worker needs only these names: build a `StrategyEngine(program, EngineConfig(...), journal)`,
feed it closed candles with `on_candle` (or `warm_up` for history), forward the events it
returns, and persist `export_state().to_json()`; restore with
`StrategyEngine(program, config, journal, state=EngineState.from_json(data))`.
"""

from __future__ import annotations

from qkt.engine.config import EngineConfig, FillAt
from qkt.engine.events import (
    EngineEvent,
    LogEvent,
    LogLevel,
    OrderEvent,
    SignalEvent,
    TradeEvent,
)
from qkt.engine.orders import Fill, Instrument, Order, OrderKind, OrderRole, OrderStatus, Side
from qkt.engine.portfolio import Account, Position
from qkt.engine.protocols import Journal, MemoryJournal, NullJournal
from qkt.engine.state import STATE_VERSION, EngineState, StateError
from qkt.engine.strategy import StrategyEngine

__all__ = [
    "STATE_VERSION",
    "Account",
    "EngineConfig",
    "EngineEvent",
    "EngineState",
    "Fill",
    "FillAt",
    "Instrument",
    "Journal",
    "LogEvent",
    "LogLevel",
    "MemoryJournal",
    "NullJournal",
    "Order",
    "OrderEvent",
    "OrderKind",
    "OrderRole",
    "OrderStatus",
    "Position",
    "Side",
    "SignalEvent",
    "StateError",
    "StrategyEngine",
    "TradeEvent",
]
