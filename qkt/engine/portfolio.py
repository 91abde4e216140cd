"""Positions and the account of one strategy, in exact decimals.

- A position is per (broker, symbol) for the whole strategy: a signed quantity and an average
  entry price. Adding to it averages the price; reducing it realizes PnL against the average;
  an order larger than the position closes it and opens the rest on the other side (a flip).
- `realized_pnl` is net of fees: every fee is a realized loss when paid (so an opening fill
  realizes `-fee`). `balance` = start + realized, `unrealized_pnl` marks each position at its
  symbol's latest close, `equity` = balance + unrealized, `total_pnl` = realized + unrealized.
- The portfolio books what fills; whether an order may fill (buying power, margin, shorts)
  is decided before, by the broker's guard (margin.py, guard.py). There are no borrow or
  funding costs.
- Each open, close or flip of a position bumps its `epoch`, which is how the engine notices a
  new position (to reset `SINCE OPEN` and capture `@open`) even if it closed and reopened in
  between two closes of a slower stream.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from qkt.engine.orders import Instrument, Side
from qkt.money import CONTEXT, ZERO, to_str


@dataclass(frozen=True, slots=True)
class Position:
    """An open position, marked at its symbol's latest close."""

    instrument: Instrument
    qty: Decimal  # signed: > 0 long, < 0 short
    avg_price: Decimal
    mark: Decimal

    @property
    def unrealized(self) -> Decimal:
        """qty * (mark - average price)."""
        return CONTEXT.multiply(self.qty, CONTEXT.subtract(self.mark, self.avg_price))

    def to_json(self) -> dict[str, Any]:
        """As JSON, money as exact decimal strings."""
        return {
            "broker": self.instrument.broker,
            "symbol": self.instrument.symbol,
            "qty": to_str(self.qty),
            "avg_price": to_str(self.avg_price),
            "mark": to_str(self.mark),
            "unrealized": to_str(self.unrealized),
        }


@dataclass(frozen=True, slots=True)
class Account:
    """The account figures (dsl.md's ACCOUNT fields, plus fees paid)."""

    start_balance: Decimal
    balance: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    total_pnl: Decimal
    fees: Decimal

    def to_json(self) -> dict[str, Any]:
        """As JSON, money as exact decimal strings."""
        return {
            "start_balance": to_str(self.start_balance),
            "balance": to_str(self.balance),
            "equity": to_str(self.equity),
            "realized": to_str(self.realized_pnl),
            "unrealized": to_str(self.unrealized_pnl),
            "total_pnl": to_str(self.total_pnl),
            "fees": to_str(self.fees),
        }


@dataclass(frozen=True, slots=True)
class Applied:
    """What one fill did to the portfolio."""

    realized: Decimal  # change in realized PnL, the fee included
    position: Decimal  # signed position after the fill
    transition: bool  # the fill opened, closed or flipped the position


@dataclass(frozen=True, slots=True)
class Preview:
    """A fill not booked yet: the realized PnL it would make and the position after it."""

    realized: Decimal  # the fee included
    qty: Decimal  # signed
    avg_price: Decimal  # 0 when flat


class Portfolio:
    """Positions, marks, realized PnL and fees; the source of every ACCOUNT/POSITION value."""

    def __init__(self, start_balance: Decimal) -> None:
        self.start_balance = start_balance
        self.realized = ZERO
        self.fees = ZERO
        self._qty: dict[Instrument, Decimal] = {}
        self._avg: dict[Instrument, Decimal] = {}
        self._marks: dict[Instrument, Decimal] = {}
        self._epochs: dict[Instrument, int] = {}
        self.transitions = 0  # opens, closes and flips of every position: the epochs' sum

    def position(self, instrument: Instrument) -> Decimal:
        """Signed quantity held (0 when flat)."""
        return self._qty.get(instrument, ZERO)

    def position_reader(self, instrument: Instrument) -> Callable[[], Decimal]:
        """`position(instrument)` as a call without arguments (no Python frame: rules read
        positions on every candle)."""
        return cast(Callable[[], Decimal], functools.partial(self._qty.get, instrument, ZERO))

    def mark_setter(self, instrument: Instrument) -> Callable[[Decimal], None]:
        """`mark(instrument, price)` as a call with the price alone (no Python frame)."""
        return functools.partial(self._marks.__setitem__, instrument)

    def avg_price(self, instrument: Instrument) -> Decimal:
        """Average entry price (0 when flat)."""
        return self._avg.get(instrument, ZERO)

    def epoch(self, instrument: Instrument) -> int:
        """Counts opens, closes and flips of the instrument's position."""
        return self._epochs.get(instrument, 0)

    def mark_of(self, instrument: Instrument) -> Decimal | None:
        """The symbol's latest close, if a candle of it was seen."""
        return self._marks.get(instrument)

    def mark(self, instrument: Instrument, price: Decimal) -> None:
        """The symbol's latest close, for unrealized PnL."""
        self._marks[instrument] = price

    def preview(
        self, instrument: Instrument, side: Side, qty: Decimal, price: Decimal, fee: Decimal
    ) -> Preview:
        """What booking one fill would do, without booking it (buying power asks this)."""
        held = self.position(instrument)
        avg = self.avg_price(instrument)
        signed = qty if side is Side.BUY else -qty
        gross = ZERO
        if held == 0 or (held > 0) == (signed > 0):
            new_qty = CONTEXT.add(held, signed)
            cost = CONTEXT.add(CONTEXT.multiply(abs(held), avg), CONTEXT.multiply(qty, price))
            new_avg = CONTEXT.divide(cost, abs(new_qty))
        else:
            closing = min(qty, abs(held))
            direction = Decimal(1) if held > 0 else Decimal(-1)
            gross = CONTEXT.multiply(
                CONTEXT.multiply(closing, CONTEXT.subtract(price, avg)), direction
            )
            new_qty = CONTEXT.add(held, signed)
            if new_qty == 0:
                new_avg = ZERO
            elif (new_qty > 0) == (held > 0):
                new_avg = avg  # a partial reduction keeps the average of what is left
            else:
                new_avg = price  # a flip: the remainder opened at this fill's price
        return Preview(CONTEXT.subtract(gross, fee), new_qty, new_avg)

    def apply(
        self, instrument: Instrument, side: Side, qty: Decimal, price: Decimal, fee: Decimal
    ) -> Applied:
        """Book one fill of `qty` (> 0) at `price`, paying `fee`."""
        held = self.position(instrument)
        after = self.preview(instrument, side, qty, price, fee)
        new_qty = after.qty
        self.realized = CONTEXT.add(self.realized, after.realized)
        self.fees = CONTEXT.add(self.fees, fee)
        transition = held == 0 or new_qty == 0 or (held > 0) != (new_qty > 0)
        if new_qty == 0:
            self._qty.pop(instrument, None)
            self._avg.pop(instrument, None)
        else:
            self._qty[instrument] = new_qty
            self._avg[instrument] = after.avg_price
        if transition:
            self._epochs[instrument] = self.epoch(instrument) + 1
            self.transitions += 1
        return Applied(after.realized, new_qty, transition)

    def positions(self) -> tuple[Position, ...]:
        """Open positions, in instrument order."""
        return tuple(
            Position(inst, qty, self._avg[inst], self._marks.get(inst, self._avg[inst]))
            for inst, qty in sorted(self._qty.items())
        )

    @property
    def unrealized(self) -> Decimal:
        """Unrealized PnL of every position at its mark."""
        total = ZERO
        for position in self.positions():
            total = CONTEXT.add(total, position.unrealized)
        return total

    @property
    def balance(self) -> Decimal:
        """Start + realized (fees included)."""
        return CONTEXT.add(self.start_balance, self.realized)

    @property
    def equity(self) -> Decimal:
        """Balance + unrealized."""
        return CONTEXT.add(self.balance, self.unrealized)

    def account(self) -> Account:
        """The account figures now."""
        unrealized = self.unrealized
        return Account(
            start_balance=self.start_balance,
            balance=self.balance,
            equity=CONTEXT.add(self.balance, unrealized),
            realized_pnl=self.realized,
            unrealized_pnl=unrealized,
            total_pnl=CONTEXT.add(self.realized, unrealized),
            fees=self.fees,
        )

    def export(self) -> dict[str, Any]:
        """Everything, as JSON-able data."""
        return {
            "start_balance": str(self.start_balance),
            "realized": str(self.realized),
            "fees": str(self.fees),
            "positions": [
                {"instrument": str(i), "qty": str(q), "avg_price": str(self._avg[i])}
                for i, q in self._qty.items()
            ],
            "marks": {str(i): str(p) for i, p in self._marks.items()},
            "epochs": {str(i): e for i, e in self._epochs.items()},
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Portfolio:
        """Load what `export` returned."""
        portfolio = cls(Decimal(data["start_balance"]))
        portfolio.realized = Decimal(data["realized"])
        portfolio.fees = Decimal(data["fees"])
        for row in data["positions"]:
            inst = Instrument.parse(row["instrument"])
            portfolio._qty[inst] = Decimal(row["qty"])
            portfolio._avg[inst] = Decimal(row["avg_price"])
        portfolio._marks = {Instrument.parse(i): Decimal(p) for i, p in data["marks"].items()}
        portfolio._epochs = {Instrument.parse(i): e for i, e in data["epochs"].items()}
        portfolio.transitions = sum(portfolio._epochs.values())
        return portfolio
