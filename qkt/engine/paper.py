"""The paper broker: books orders, fills them by the rules of matching.py, pays fees and slippage.

Choices a trader should know (dsl.md is silent on them):
- Market orders fill at the close of the signalling candle (`FillAt.CLOSE`) or wait for the open
  of the symbol's next candle (`FillAt.NEXT_OPEN`). IOC and FOK orders are checked against that
  same single price and filled whole or cancelled (unlimited liquidity: FOK = IOC here).
- GTC and DAY orders rest. A resting order is matched against candles of its symbol's finest
  stream that open at or after it was placed, so it never fills on the candle that placed it.
  DAY orders expire at the next UTC midnight after placement (placement is at the signal
  candle's close time, so a DAY order placed at a 1d close lives through the next day), when a
  candle opening at or after that midnight arrives. Bracket, trailing and OCO exits rest GTC
  (OCO exits DAY if the action says DAY).
- Slippage moves every fill price against you (buys higher, sells lower) by `slippage_bps`; a
  limit (or triggered stop-limit) is then capped at its limit, so it never fills worse than it.
  The fee is `fee_bps` of the fill's notional, paid from the balance (a realized loss).
- Exits (stop loss, take profit, trailing exit, OCO, CLOSE) only ever reduce a position: one
  that would not (position flat or on the same side) is cancelled, and one larger than the
  position fills for the position. After every fill, exits that no longer reduce the position
  (it closed or flipped) are cancelled; a fill in an OCO group cancels the rest of the group.
- When an entry with a bracket (or a trailing exit) fills, its exits are placed as one OCO group
  for the quantity it opened, priced from the entry's fill price. Exits of an entry filled at a
  candle's open are live for the rest of that candle; exits of an entry filled inside a candle
  or at its close are live from the next candle (the path inside the candle is unknown).
- When several exits of one OCO group would fill on the same candle (a candle touching both the
  stop loss and the take profit), the worst price for the trader wins (the stop loss):
  pessimistic, since the order of high and low inside the candle is unknown. Other orders of a
  candle fill in the order they were placed.
- Every order is put to the `OrderGate` (guard.py) when placed and again when it would fill: a
  refused order is REJECTED (journaled, an `OrderRejectedEvent`), never half-filled.
- A position with a liquidation price (margin.py) that the candle reached is closed at that
  price (role LIQUIDATION, no slippage) before the candle's orders are matched, unless one of
  its stops fills at a price no worse; and after the matching if it is still open.

The broker is three layers, a class each: `OrderBook` (orderbook.py: the open orders, counters
and journaling), `FillingBook` (filling.py: a fill's price, fee and consequences) and
`PaperBroker` here (placing and cancelling orders, and matching candles against them).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from qkt.dsl.program import TimeInForce
from qkt.engine.config import FillAt
from qkt.engine.events import LogEvent, LogLevel
from qkt.engine.exits import worst_per_group
from qkt.engine.filling import FillingBook
from qkt.engine.margin import liquidation_price, stop_fills_first
from qkt.engine.matching import Match, at_price, match_candle
from qkt.engine.orders import (
    Instrument,
    Order,
    OrderKind,
    OrderRequest,
    OrderRole,
    OrderStatus,
    Side,
)
from qkt.market.models import Candle

DAY_MS: Final = 86_400_000
_IMMEDIATE: Final = (TimeInForce.IOC, TimeInForce.FOK)


class PaperBroker(FillingBook):
    """The simulated exchange of one strategy: its order book, fills and trade count."""

    # -- placing -----------------------------------------------------------------------------

    def place(self, request: OrderRequest, price: Decimal, now_ms: int) -> None:
        """Place an order at `now_ms`, the current price being `price` (the signal's close)."""
        order = Order(
            id=self._take_order_id(),
            instrument=request.instrument,
            side=request.side,
            kind=request.kind,
            qty=request.qty,
            tif=request.tif,
            role=request.role,
            created_ms=now_ms,
            rule=request.rule,
            limit=request.limit,
            stop=request.stop,
            trail=request.trail,
            anchor=price if request.kind is OrderKind.TRAILING else None,
            expires_ms=_next_midnight(now_ms) if request.tif is TimeInForce.DAY else None,
            exits=request.exits,
        )
        reference = request.limit or request.stop or price
        refused = self._refused(order, order.qty, reference, self._fee(order.qty, reference))
        if refused is not None:
            self._reject(order, refused, now_ms)
            return
        if _is_immediate(order) and self._config.fill_at is FillAt.CLOSE:
            raw = at_price(order, price)
            if raw is None:
                reason = f"{order.tif.value}: not marketable"
                self._finish(order, OrderStatus.CANCELLED, reason, now_ms)
            else:
                self._fill(order, raw, now_ms)
            return
        self._rest(order, now_ms)

    def place_oco(
        self, request: OrderRequest, stop: Decimal | None, limit: Decimal | None, now_ms: int
    ) -> None:
        """Two exits for the current position, a stop and a limit, that cancel each other."""
        group = self._take_group_id()
        tif = TimeInForce.DAY if request.tif is TimeInForce.DAY else TimeInForce.GTC
        expires = _next_midnight(now_ms) if tif is TimeInForce.DAY else None
        for kind, role, level in (
            (OrderKind.STOP, OrderRole.OCO_STOP, stop),
            (OrderKind.LIMIT, OrderRole.OCO_LIMIT, limit),
        ):
            if level is None:
                continue
            order = Order(
                id=self._take_order_id(),
                instrument=request.instrument,
                side=request.side,
                kind=kind,
                qty=request.qty,
                tif=tif,
                role=role,
                created_ms=now_ms,
                rule=request.rule,
                stop=level if kind is OrderKind.STOP else None,
                limit=level if kind is OrderKind.LIMIT else None,
                expires_ms=expires,
                group=group,
            )
            self._rest(order, now_ms)

    def close(self, instrument: Instrument, price: Decimal, now_ms: int, rule: int | None) -> None:
        """Flatten `instrument` with a market order and cancel its resting exits."""
        self.cancel_exits(instrument, "closed by rule", now_ms)
        held = self._portfolio.position(instrument)
        if held == 0:
            return
        side = Side.SELL if held > 0 else Side.BUY
        request = OrderRequest(
            instrument, side, OrderKind.MARKET, abs(held), TimeInForce.GTC, rule, OrderRole.CLOSE
        )
        self.place(request, price, now_ms)

    def cancel_entries(self, reason: str, now_ms: int) -> None:
        """Cancel every resting entry order (a halt)."""
        for order in list(self._orders.values()):
            if not order.role.is_exit:
                self._finish(order, OrderStatus.CANCELLED, reason, now_ms)

    def cancel_all(self, reason: str, now_ms: int) -> None:
        """Cancel every resting order, exits included (a kill)."""
        for order in list(self._orders.values()):
            self._finish(order, OrderStatus.CANCELLED, reason, now_ms)

    def cancel_exits(self, instrument: Instrument, reason: str, now_ms: int) -> None:
        """Cancel every exit order resting in `instrument`."""
        for order in list(self._open_in(instrument)):
            if order.role.is_exit:
                self._finish(order, OrderStatus.CANCELLED, reason, now_ms)

    # -- matching ----------------------------------------------------------------------------

    def on_candle(self, candle: Candle, instrument: Instrument | None = None) -> None:
        """Match `candle` (of its symbol's finest stream) against the symbol's open orders,
        liquidating first a position whose liquidation price the candle reached, unless one of
        its stops fills first (at a price no worse), and again after the orders. `instrument`
        is the candle's (the engine knows it already)."""
        if instrument is None:
            instrument = Instrument.of(candle.key)
        if not self._orders:  # nothing to match: only a liquidation can happen, and only once
            held = self._portfolio.position(instrument)
            if held != 0 and self._config.margin.liquidates(instrument, held > 0):
                self._liquidate(candle, before_orders=True)
            return
        held_at_open = self._portfolio.position(instrument)
        for order in list(self._open_in(instrument)):
            if order.expires_ms is not None and candle.open_ms >= order.expires_ms:
                self._finish(order, OrderStatus.EXPIRED, "day ended", candle.open_ms)
        self._liquidate(candle, before_orders=True)  # an expired stop protects nothing
        for order in list(self._open_in(instrument)):
            if order.id not in self._orders:  # cancelled by an earlier fill (a halt, an OCO)
                continue
            if _is_immediate(order) and order.created_ms <= candle.open_ms:
                raw = at_price(order, candle.open)
                if raw is None:
                    reason = f"{order.tif.value}: not marketable"
                    self._finish(order, OrderStatus.CANCELLED, reason, candle.open_ms)
                else:
                    self._fill(order, raw, candle.open_ms)
        # Exits placed by a fill at the open are live for the rest of the candle: go again.
        seen: set[int] = set()
        while batch := [
            order
            for order in self._open_in(instrument)
            if order.id not in seen
            and order.created_ms <= candle.open_ms
            and not _is_immediate(order)
        ]:
            seen.update(order.id for order in batch)
            self._match_batch(batch, candle)
        if held_at_open != 0 and (held_at_open > 0) == (self._portfolio.position(instrument) > 0):
            self._liquidate(candle, before_orders=False)

    def _liquidate(self, candle: Candle, *, before_orders: bool) -> None:
        instrument = Instrument.of(candle.key)
        held = self._portfolio.position(instrument)
        avg = self._portfolio.avg_price(instrument)
        level = liquidation_price(self._config.margin, instrument, held, avg)
        if level is None or (candle.low > level if held > 0 else candle.high < level):
            return
        if before_orders and stop_fills_first(self._open_in(instrument), candle, level, held):
            return
        order = Order(
            id=self._take_order_id(),
            instrument=instrument,
            side=Side.SELL if held > 0 else Side.BUY,
            kind=OrderKind.MARKET,
            qty=abs(held),
            tif=TimeInForce.GTC,
            role=OrderRole.LIQUIDATION,
            created_ms=candle.open_ms,
        )
        gapped = candle.open <= level if held > 0 else candle.open >= level
        ts = candle.open_ms if gapped else candle.end_ms
        side = "long" if held > 0 else "short"
        margin = self._config.margin
        message = (
            f"{instrument}: {side} {abs(held)} liquidated at {level} (entry {avg}, leverage"
            f" {margin.leverage_of(instrument)}, maintenance rate {margin.maintenance_rate})"
        )
        self._events.add(LogEvent(ts, LogLevel.WARNING, message))
        self._fill(order, level, ts)

    def _match_batch(self, batch: list[Order], candle: Candle) -> None:
        hits: list[Match] = []
        for order in batch:
            result = match_candle(order, candle)
            if result.order is not order:
                self._orders[order.id] = result.order
                if result.order.triggered and not order.triggered and result.price is None:
                    self._record(result.order, "stop triggered", candle.end_ms)
            if result.price is not None:
                hits.append(result)
        for hit in sorted(worst_per_group(hits), key=lambda m: m.order.id):
            current = self._orders.get(hit.order.id)
            if current is None:  # cancelled by an earlier fill of this candle
                continue
            assert hit.price is not None
            self._fill(current, hit.price, candle.open_ms if hit.at_open else candle.end_ms)


def _is_immediate(order: Order) -> bool:
    """Fills at one price now (or at the next open) or not at all: market, IOC, FOK."""
    return order.kind is OrderKind.MARKET or order.tif in _IMMEDIATE


def _next_midnight(ms: int) -> int:
    return (ms // DAY_MS + 1) * DAY_MS
