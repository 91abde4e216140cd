"""`qkt status NAME` for humans: one strategy's `/status` as short labelled lines.

The answer is either a running worker's own `/status` (plus the daemon's `state`, `restarts`,
`port`) or, for a worker without a process that answers, the daemon's record of it (a list
entry plus `gave_up`, `last_log`). Known fields become readable lines (money in cents, times in
ISO UTC, nested objects in words); any field this view does not know is still printed, so
nothing a newer worker adds is hidden. `--json` prints the answer as it came.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from qkt.cli.haltview import risk_part
from qkt.cli.render import cell, duration, iso_time, money, price

Line = tuple[str, list[str]]  # a label and its value lines (the first beside the label)
_LOG_INDENT: Final = "  "


class _Fields:
    """The answer's fields, remembering which ones a part has shown."""

    def __init__(self, status: Mapping[str, Any]) -> None:
        self._status = status
        self.used: set[str] = set()

    def get(self, key: str) -> Any:
        self.used.add(key)
        return self._status.get(key)

    def has(self, key: str) -> bool:
        """True if the field is there, even as null (a worker with no trade yet)."""
        return key in self._status

    def rest(self) -> list[tuple[str, Any]]:
        return [(key, value) for key, value in self._status.items() if key not in self.used]


def status_lines(status: Mapping[str, Any]) -> list[str]:
    """The human view of one `/status` answer, line by line."""
    fields = _Fields(status)
    rows = [row for part in _PARTS for row in part(fields)]
    log = fields.get("last_log")
    rows += [(key.replace("_", " "), _generic(value)) for key, value in fields.rest()]
    width = max((len(label) for label, _ in rows), default=0)
    lines = []
    for label, values in rows:
        values = values or ["-"]
        lines.append(f"{label.ljust(width)}  {values[0]}".rstrip())
        lines += [f"{' ' * width}  {value}" for value in values[1:]]
    if isinstance(log, list) and log:
        lines.append("last log")
        lines += [f"{_LOG_INDENT}{line}" for line in log]
    return lines


def _identity(fields: _Fields) -> Iterator[Line]:
    name, strategy, version = fields.get("name"), fields.get("strategy"), fields.get("version")
    about = f" (strategy {strategy} v{version})" if strategy is not None else ""
    yield "name", [f"{cell(name)}{about}"]
    state = [cell(fields.get("state"))]
    uptime = fields.get("uptime_ms")
    if isinstance(uptime, int) and uptime > 0:
        state.append(f"up {duration(uptime)}")
    restarts = fields.get("restarts")
    if restarts is not None:
        state.append(f"{restarts} restart{'' if restarts == 1 else 's'}")
    yield "state", [", ".join(state)]
    pid, port = fields.get("pid"), fields.get("port")
    if pid is not None or port is not None:
        yield "process", [f"pid {cell(pid)}, status port {cell(port)}"]
    started = fields.get("started_at")
    if started is not None:
        yield "started", [_trim_ms(str(started))]
    yield "file", [cell(fields.get("file"))]


def _source(fields: _Fields) -> Iterator[Line]:
    """The deployed source's hash, and whether the file on disk still holds it."""
    digest, changed = fields.get("source_hash"), fields.get("file_changed")
    if not digest:
        return
    line = f"sha256 {str(digest)[:12]}"
    if changed is True:
        line += ": the file on disk differs (restarts run the deployed source)"
    elif changed is False:
        line += ", as the file on disk"
    yield "source", [line]


def _failure(fields: _Fields) -> Iterator[Line]:
    code, error, restart_in, gave_up = (
        fields.get("exit_code"),
        fields.get("error"),
        fields.get("restart_in_ms"),
        fields.get("gave_up"),
    )
    if code is not None:
        yield "exit code", [str(code)]
    if error:
        yield "error", [str(error)]
    if gave_up:
        yield "restart", ["no: gave up (more crashes than the restart policy allows)"]
    elif restart_in is not None:
        soon = isinstance(restart_in, int) and restart_in < 1000
        yield "restart", ["in under a second" if soon else f"in {duration(restart_in)}"]


def _account(fields: _Fields) -> Iterator[Line]:
    def cents(key: str) -> str:
        return cell(money(fields.get(key)))

    if not fields.has("equity"):
        return
    yield (
        "equity",
        [f"{cents('equity')} (balance {cents('balance')}, start {cents('start_balance')})"],
    )
    yield (
        "pnl",
        [
            f"total {cents('total_pnl')}: realized {cents('realized')}, "
            f"unrealized {cents('unrealized')}, fees {cents('fees')}"
        ],
    )


def _trading(fields: _Fields) -> Iterator[Line]:
    trades = fields.get("trades")
    yield "trades", [cell(trades)]
    if fields.has("last_trade"):
        last = fields.get("last_trade")
        yield "last trade", [_trade(last) if isinstance(last, Mapping) else "-"]
    positions = fields.get("positions")
    if isinstance(positions, list):
        yield "positions", [_position(p) for p in positions if isinstance(p, Mapping)] or ["none"]
    orders = fields.get("open_orders")
    if isinstance(orders, list):
        yield "open orders", [_order(o) for o in orders if isinstance(o, Mapping)] or ["none"]


def _streams(fields: _Fields) -> Iterator[Line]:
    keys = fields.get("keys")
    if not isinstance(keys, list):
        return
    last = fields.get("last_candle_ts")
    live = fields.get("candles")
    last = last if isinstance(last, Mapping) else {}
    live = live if isinstance(live, Mapping) else {}
    lines = []
    for key in keys:
        about = []
        if key in live:
            about.append(f"{live[key]} candles")
        if key in last:
            about.append(f"last {iso_time(last[key])}")
        lines.append(f"{key}: {', '.join(about)}" if about else str(key))
    yield "streams", lines or ["none"]
    warm, warmup = fields.get("warm"), fields.get("warmup_candles")
    if warm is not None:
        yield "warm", [f"{cell(warm)}" + (f" ({warmup} warm-up candles)" if warmup else "")]
    indicators = fields.get("indicators")
    if isinstance(indicators, Mapping) and indicators:
        values = [f"{text} = {'not warm' if v is None else v}" for text, v in indicators.items()]
        yield "indicators", values


def _feeds(fields: _Fields) -> Iterator[Line]:
    """Per key: live or stale (the last candle's age), and its history (warm, or missing)."""
    feeds, warming, stale = fields.get("feeds"), fields.get("warming"), fields.get("stale")
    lines = []
    for feed in feeds if isinstance(feeds, list) else []:
        if not isinstance(feed, Mapping):
            continue
        age = feed.get("last_candle_age_ms")
        live = "stale" if feed.get("stale") else "live"
        if isinstance(age, int):
            live += f" (last candle {duration(age)} ago)"
        history = f"history {feed.get('history')} from {feed.get('source') or 'no source'}"
        have = f"{feed.get('candles')} candles, {feed.get('needed')} needed"
        lines.append(f"{feed.get('key')}: {live}; {history}, {have}")
    if lines:
        yield "feeds", lines
    if stale:
        yield "stale", ["a key it reads is not live: signals wait for its candles"]
    if warming:
        yield "warming", [str(warming)]


def _paper(fields: _Fields) -> Iterator[Line]:
    args = fields.get("args")
    source = args if isinstance(args, Mapping) else None
    fee = source.get("fee_bps") if source else fields.get("fee_bps")
    slippage = source.get("slippage_bps") if source else fields.get("slippage_bps")
    sim = source.get("sim") if source else fields.get("sim")
    fill_at = None if source else fields.get("fill_at")
    if fee is None and slippage is None:
        return
    parts = [f"fee {fee} bps", f"slippage {slippage} bps"]
    if fill_at is not None:
        parts.append(f"fills at {str(fill_at).replace('_', ' ')}")
    if sim:
        parts.append("every stream on the simulated market")
    if source and source.get("balance") is not None:
        parts.insert(0, f"balance {cell(money(source['balance']))}")
    yield "paper", [", ".join(parts)]


def _health(fields: _Fields) -> Iterator[Line]:
    hub = fields.get("subscriber")
    if isinstance(hub, Mapping):
        yield "hub", [", ".join(f"{value} {key}" for key, value in hub.items())]
    events = fields.get("events")
    if isinstance(events, Mapping):
        yield (
            "events",
            [
                f"last id {events.get('last_id')}, {events.get('subscribers')} live readers, "
                f"{events.get('dropped')} dropped"
            ],
        )


_PARTS: Final = (
    _identity,
    risk_part,
    _source,
    _failure,
    _account,
    _trading,
    _streams,
    _feeds,
    _paper,
    _health,
)


def _trade(trade: Mapping[str, Any]) -> str:
    """`SELL 0.05 BTCUSDT @ 64491.10 (realized -15.47) 2026-11-24T23:00:36Z`."""
    return (
        f"{trade.get('side')} {trade.get('qty')} {trade.get('symbol')} "
        f"@ {cell(price(trade.get('price')))} (realized {cell(money(trade.get('realized')))}) "
        f"{iso_time(trade.get('ts'))}"
    )


def _position(position: Mapping[str, Any]) -> str:
    """`BTCUSDT long 0.05 @ 64400.00, mark 64491.10, unrealized 4.55`."""
    qty = str(position.get("qty", ""))
    side, size = ("short", qty[1:]) if qty.startswith("-") else ("long", qty)
    return (
        f"{position.get('symbol')} {side} {size} @ {cell(price(position.get('avg_price')))}, "
        f"mark {cell(price(position.get('mark')))}, "
        f"unrealized {cell(money(position.get('unrealized')))}"
    )


def _order(order: Mapping[str, Any]) -> str:
    """`#12 SELL 0.05 BTCUSDT STOP 63000.00 (STOP_LOSS, GTC)`."""
    levels = [
        f"{name} {cell(price(order[name]))}"
        for name in ("limit", "stop", "anchor")
        if order.get(name) is not None
    ]
    text = f"#{order.get('id')} {order.get('side')} {order.get('qty')} {order.get('symbol')} "
    text += str(order.get("kind"))
    if levels:
        text += " " + ", ".join(levels)
    return f"{text} ({order.get('role')}, {order.get('tif')})"


def _generic(value: Any) -> list[str]:
    """A field this view does not know: nested objects in words, never raw JSON."""
    if isinstance(value, Mapping):
        return [", ".join(f"{key} {_flat(item)}" for key, item in value.items()) or "-"]
    if isinstance(value, list):
        return [_flat(item) for item in value] or ["none"]
    return [cell(value)]


def _flat(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_flat(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_flat(item) for item in value) + "]"
    return cell(value)


def _trim_ms(stamp: str) -> str:
    """`2026-11-24T23:01:40.146Z` -> `2026-11-24T23:01:40Z`."""
    head, dot, rest = stamp.partition(".")
    return f"{head}Z" if dot and rest.endswith("Z") else stamp
