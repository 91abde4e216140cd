"""Accounting invariants on random markets (gaps, spikes, flat stretches) with a busy program:
whatever happens, the books add up and no exit rests without a position to reduce."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qkt.engine.config import EngineConfig, FillAt
from qkt.engine.protocols import MemoryJournal
from qkt.engine.strategy import StrategyEngine
from qkt.market.models import Candle
from qkt.money import CONTEXT
from tests.engine.builder import D, candle
from tests.engine.test_state import busy_program

PROGRAM = busy_program().build()
KEYS = ("SIM:BTCUSDT:1m", "SIM:ETHUSDT:1m")

# One step of a market: a move of the close (in cents, gaps included) and wicks above/below.
step = st.tuples(
    st.integers(-300, 300),  # open gap from the previous close
    st.integers(-400, 400),  # close move from the open
    st.integers(0, 300),  # upper wick
    st.integers(0, 300),  # lower wick
)


def build_market(steps: list[tuple[int, int, int, int]]) -> list[Candle]:
    out: list[Candle] = []
    last = {key: Decimal(100) for key in KEYS}
    for i, (gap, move, up, down) in enumerate(steps):
        for key in KEYS:
            open_ = max(D("1"), last[key] + Decimal(gap) / 100)
            close = max(D("1"), open_ + Decimal(move) / 100)
            high = max(open_, close) + Decimal(up) / 100
            low = max(D("0.5"), min(open_, close) - Decimal(down) / 100)
            out.append(candle(i, open_, high, low, close, key=key))
            last[key] = close
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(step, min_size=30, max_size=160),
    fill_at=st.sampled_from(list(FillAt)),
    fee=st.sampled_from([0, 5]),
)
def test_the_books_always_add_up(
    steps: list[tuple[int, int, int, int]], fill_at: FillAt, fee: int
) -> None:
    journal = MemoryJournal()
    config = EngineConfig(fee_bps=D(fee), slippage_bps=D(3), fill_at=fill_at)
    engine = StrategyEngine(PROGRAM, config, journal)
    for bar in build_market(steps):
        engine.on_candle(bar)
        held = {p.instrument: p.qty for p in engine.positions}
        for order in engine.open_orders:
            if order.role.is_exit:  # an exit always has a position to reduce
                qty = held.get(order.instrument, Decimal(0))
                assert qty * order.side.sign < 0, order

    fills = journal.fills
    positions: dict[object, Decimal] = defaultdict(Decimal)
    realized = fees = Decimal(0)
    for fill in fills:
        assert fill.qty > 0 and fill.price > 0
        positions[fill.instrument] += fill.qty * fill.side.sign
        assert positions[fill.instrument] == fill.position
        realized = CONTEXT.add(realized, fill.realized)
        fees = CONTEXT.add(fees, fill.fee)
    account = engine.account
    assert {i: q for i, q in positions.items() if q} == {
        p.instrument: p.qty for p in engine.positions
    }
    assert account.realized_pnl == realized
    assert account.fees == fees
    assert account.balance == CONTEXT.add(config.balance, realized)
    assert account.equity == CONTEXT.add(account.balance, account.unrealized_pnl)
    assert engine.trade_count == len(fills)
