"""The engine: incremental indicators, rules, paper broker and portfolio (pure, no I/O).

A worker needs only these names: build a `StrategyEngine(program, EngineConfig(...), journal)`,
feed it closed candles with `on_candle` (or `warm_up` for history), forward the events it
returns, and persist `export_state().to_json()`; restore with
`StrategyEngine(program, config, journal, state=EngineState.from_json(data))`.

Risk (docs/risk.md): `EngineConfig(limits=RiskLimits(...), margin=MarginRules(...))`, built
from flag values by `limits_from_flags` / `parse_leverage` / `parse_margin`; `engine.halt()`,
`resume()`, `kill()`, `tick()`, `halt_info`; daemon-wide: `evaluate_portfolio_limits`.
"""

from __future__ import annotations

from qkt.engine.config import EngineConfig, FillAt
from qkt.engine.events import (
    EngineEvent,
    LogEvent,
    LogLevel,
    OrderEvent,
    OrderRejectedEvent,
    RiskEvent,
    SignalEvent,
    TradeEvent,
)
from qkt.engine.halt import HaltInfo, HaltKind, KillResult, NotHaltedError
from qkt.engine.limits import (
    LIMIT_FLAGS,
    PortfolioLimits,
    RiskLimitError,
    RiskLimits,
    limits_from_flags,
    parse_max_daily_loss,
    parse_max_drawdown_pct,
    parse_max_loss_streak,
    parse_max_orders_per_minute,
    parse_max_position_notional,
)
from qkt.engine.margin import (
    MarginError,
    MarginRules,
    MarketKind,
    margin_from_flags,
    parse_leverage,
    parse_margin,
)
from qkt.engine.orders import Fill, Instrument, Order, OrderKind, OrderRole, OrderStatus, Side
from qkt.engine.portfolio import Account, Position
from qkt.engine.protocols import Journal, MemoryJournal, NullJournal
from qkt.engine.risk import Breach, StrategyEquity, evaluate_portfolio_limits
from qkt.engine.state import STATE_VERSION, EngineState, StateError
from qkt.engine.strategy import StrategyEngine

__all__ = [
    "LIMIT_FLAGS",
    "STATE_VERSION",
    "Account",
    "Breach",
    "HaltInfo",
    "HaltKind",
    "KillResult",
    "MarginError",
    "MarginRules",
    "MarketKind",
    "NotHaltedError",
    "OrderRejectedEvent",
    "PortfolioLimits",
    "RiskEvent",
    "RiskLimitError",
    "RiskLimits",
    "StrategyEquity",
    "evaluate_portfolio_limits",
    "limits_from_flags",
    "margin_from_flags",
    "parse_leverage",
    "parse_margin",
    "parse_max_daily_loss",
    "parse_max_drawdown_pct",
    "parse_max_loss_streak",
    "parse_max_orders_per_minute",
    "parse_max_position_notional",
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
