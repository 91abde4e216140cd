"""The fake exchange speaks the documented v5 shapes (shared/docs/bybit.md) to a raw client."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from tests.fakes.bybit_exchange import FakeBybit, fake_bybit
from tests.helpers import wait_until_async

T0 = 1_767_225_600_000


async def _ask(ws: ClientConnection, body: dict[str, Any]) -> dict[str, Any]:
    await ws.send(orjson.dumps(body).decode())
    answer: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    return answer


async def _scenario(fake: FakeBybit) -> None:
    async with (
        connect(fake.spot_url, proxy=None) as spot,
        connect(fake.linear_url, proxy=None) as linear,
    ):
        ack = await _ask(spot, {"req_id": "a", "op": "subscribe", "args": ["kline.1.BTCUSDT"]})
        assert ack == {
            "success": True,
            "ret_msg": "",
            "conn_id": ack["conn_id"],
            "req_id": "a",
            "op": "subscribe",
        }
        again = await _ask(spot, {"req_id": "b", "op": "subscribe", "args": ["kline.1.BTCUSDT"]})
        assert again["success"] is False and "already subscribed" in again["ret_msg"]
        bad = await _ask(spot, {"req_id": "c", "op": "subscribe", "args": ["kline.2.BTCUSDT"]})
        assert bad["success"] is False and "kline.2.BTCUSDT" in bad["ret_msg"]
        pong = await _ask(spot, {"req_id": "p", "op": "ping"})
        assert pong == {
            "success": True,
            "ret_msg": "pong",
            "conn_id": ack["conn_id"],
            "req_id": "p",
            "op": "ping",
        }
        linear_pong = await _ask(linear, {"req_id": "q", "op": "ping"})
        assert linear_pong["op"] == "pong" and linear_pong["args"][0].isdigit()

        assert fake.push_kline("BTCUSDT", T0, "1.5", "2", "1", "1.75", "3", confirm=False) == 1
        push = orjson.loads(await asyncio.wait_for(spot.recv(), 5))
        assert push["topic"] == "kline.1.BTCUSDT" and push["type"] == "snapshot"
        [kline] = push["data"]
        assert kline["start"] == T0 and kline["end"] == T0 + 59_999 and kline["confirm"] is False
        assert (kline["open"], kline["close"], kline["interval"]) == ("1.5", "1.75", "1")

        await _ask(linear, {"req_id": "t", "op": "subscribe", "args": ["publicTrade.ETHUSDT"]})
        assert fake.push_trades("ETHUSDT", [(T0, "10", "0.5")], category="linear") == 1
        assert fake.push_trades("ETHUSDT", [(T0, "10", "0.5")]) == 0  # nobody on spot
        trades = orjson.loads(await asyncio.wait_for(linear.recv(), 5))
        [trade] = trades["data"]
        assert {k: trade[k] for k in ("T", "s", "p", "v")} == {
            "T": T0,
            "s": "ETHUSDT",
            "p": "10",
            "v": "0.5",
        }
        unsub = await _ask(spot, {"req_id": "u", "op": "unsubscribe", "args": ["kline.1.BTCUSDT"]})
        assert unsub["success"] is True and fake.subscribed() == set()
        assert fake.subscribed("linear") == {"publicTrade.ETHUSDT"}
        assert fake.connections() == 2 and fake.connections("spot") == 1

        fake.stall()
        await spot.send(orjson.dumps({"req_id": "s", "op": "ping"}).decode())
        await wait_until_async(lambda: fake.requests[-1].req_id == "s")
        fake.resume()
        assert (await _ask(spot, {"req_id": "r", "op": "ping"}))["req_id"] == "r"  # not "s"
    await wait_until_async(lambda: fake.connections() == 0)
    assert [(r.conn, r.category, r.op) for r in fake.requests][:3] == [
        (1, "spot", "subscribe"),
        (1, "spot", "subscribe"),
        (1, "spot", "subscribe"),
    ]


def test_fake_exchange_speaks_the_documented_shapes() -> None:
    with fake_bybit() as fake:
        asyncio.run(asyncio.wait_for(_scenario(fake), 30))
