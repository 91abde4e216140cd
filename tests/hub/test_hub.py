"""CandleHub: ref-counted keys over one feed per broker, dedupe, stats, endpoints, shutdown."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from qkt.hub import CandleHub, HubConfig, HubEndpoints, HubError, HubSubscriber, WireError
from qkt.paths import StateDir
from tests.helpers import wait_until_async
from tests.hub.feeds import ScriptedFeeds, candle, key, run, take

K1M = key("SIM:BTCUSDT:1m")
K15M = key("SIM:BTCUSDT:15m")
KBYBIT = key("BYBIT:ETHUSDT:1m")


def test_two_holders_share_one_feed_subscription_and_the_last_release_unsubscribes(
    state_root: Path,
) -> None:
    async def scenario() -> None:
        feeds = ScriptedFeeds()
        async with CandleHub(feeds, StateDir(state_root)) as hub:
            hub.acquire(K1M)
            hub.acquire(K1M)
            hub.acquire(K15M)
            hub.acquire(KBYBIT)
            assert feeds.created == ["SIM", "BYBIT"]  # one feed per broker, made lazily
            assert feeds["SIM"].calls == [("subscribe", K1M), ("subscribe", K15M)]
            assert hub.refcount(K1M) == 2
            hub.release(K1M)
            assert feeds["SIM"].calls[-1] == ("subscribe", K15M)  # one holder left
            hub.release(K1M)
            assert feeds["SIM"].calls[-1] == ("unsubscribe", K1M)
            assert hub.refcount(K1M) == 0
            assert [s.key for s in hub.stats()] == ["BYBIT:ETHUSDT:1m", "SIM:BTCUSDT:15m"]
            with pytest.raises(HubError, match="release of SIM:BTCUSDT:1m, which this hub"):
                hub.release(K1M)
        assert feeds["SIM"].closed and feeds["BYBIT"].closed

    run(scenario())


def test_a_feed_that_refuses_a_key_leaves_no_reference(state_root: Path) -> None:
    class Refusing(ScriptedFeeds):
        def __call__(self, broker: str):  # type: ignore[no-untyped-def]
            feed = super().__call__(broker)

            def refuse(k: object) -> None:
                raise ValueError(f"unknown symbol in {k}")

            feed.subscribe = refuse  # type: ignore[method-assign]
            return feed

    async def scenario() -> None:
        async with CandleHub(Refusing(), StateDir(state_root)) as hub:
            with pytest.raises(ValueError, match="unknown symbol"):
                hub.acquire(K1M)
            assert hub.refcount(K1M) == 0 and hub.stats() == []
            with pytest.raises(WireError):
                hub.acquire(key("SI.M:BTCUSDT:1m"))

    run(scenario())


def test_acquire_before_start_is_refused(state_root: Path) -> None:
    hub = CandleHub(ScriptedFeeds(), StateDir(state_root))
    with pytest.raises(HubError, match="not running"):
        hub.acquire(K1M)
    run(hub.aclose())


def test_dedupes_on_key_and_open_time_and_reports_stats(state_root: Path) -> None:
    async def scenario() -> None:
        feeds = ScriptedFeeds()
        async with CandleHub(feeds, StateDir(state_root)) as hub:
            hub.acquire(K1M)
            hub.acquire(K1M)
            (line,) = hub.stats()
            assert line.to_json() == {
                "key": "SIM:BTCUSDT:1m",
                "subscribers": 2,
                "candles_published": 0,
                "last_close_ts": None,
                "feed_state": "live",
                "last_message_age_ms": None,
                "seq": 0,
                "duplicates_dropped": 0,
                "warm": False,
                "history_candles": 0,
                "history_source": None,
                "history_reason": "the feed has no history source",
                "stale": False,
                "last_candle_age_ms": None,
            }
            async with HubSubscriber(hub.endpoints) as sub:
                await sub.subscribe([K1M])
                feed = feeds["SIM"]
                for i in (0, 1, 1, 0, 2):  # a resent candle and a late older one
                    feed.push(candle(K1M, i))
                feed.push(candle(K15M, 0))  # nobody holds 15m: dropped
                got = await take(sub, 3)
                assert [(c.seq, c.candle) for c in got] == [
                    (1, candle(K1M, 0)),
                    (2, candle(K1M, 1)),
                    (3, candle(K1M, 2)),
                ]
                await wait_until_async(lambda: hub.dropped_unacquired == 1)
            (line,) = hub.stats()
            assert line.candles_published == 3
            assert line.duplicates_dropped == 2
            assert line.seq == 3
            assert line.last_close_ts == candle(K1M, 2).end_ms
            assert line.last_message_age_ms is not None and line.last_message_age_ms >= 0

    run(scenario())


def test_a_feed_whose_stream_dies_shows_as_failed(state_root: Path) -> None:
    class Exploding(ScriptedFeeds):
        def __call__(self, broker: str):  # type: ignore[no-untyped-def]
            feed = super().__call__(broker)

            async def candles():  # type: ignore[no-untyped-def]
                raise RuntimeError("upstream protocol bug")
                yield  # pragma: no cover

            feed.candles = candles  # type: ignore[method-assign]
            return feed

    async def scenario() -> None:
        async with CandleHub(Exploding(), StateDir(state_root)) as hub:
            hub.acquire(K1M)
            await wait_until_async(lambda: hub.stats()[0].feed_state == "failed")

    run(scenario())


def test_binds_ipc_in_the_state_dir_and_removes_the_sockets_on_close(state_root: Path) -> None:
    async def scenario() -> None:
        state = StateDir(state_root)
        hub = CandleHub(ScriptedFeeds(), state)
        endpoints = await hub.start()
        try:
            assert endpoints.pub == f"ipc://{state.hub_socket}"
            assert endpoints.snapshot == f"ipc://{state.hub_snapshot_socket}"
            assert state.hub_socket.exists() and state.hub_snapshot_socket.exists()
            # A second hub on the same state dir must not steal the first one's sockets.
            with pytest.raises(HubError, match="another CandleHub is already listening"):
                await CandleHub(ScriptedFeeds(), state).start()
            assert state.hub_socket.exists()
        finally:
            await hub.aclose()
        assert not state.hub_socket.exists() and not state.hub_snapshot_socket.exists()

    run(scenario())


def test_a_stale_socket_file_is_replaced(state_root: Path) -> None:
    state = StateDir(state_root)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(state.hub_socket))  # bound, never listened on, then closed: a dead daemon's
    stale.close()

    async def scenario() -> None:
        async with CandleHub(ScriptedFeeds(), state) as hub:
            assert hub.endpoints.pub.startswith("ipc://")

    run(scenario())


def test_falls_back_to_tcp_when_the_ipc_path_is_too_long(tmp_path: Path) -> None:
    root = tmp_path / ("deep-" * 20)
    assert len(str(root / "hub-snapshot.sock")) > 107

    async def scenario() -> None:
        feeds = ScriptedFeeds()
        async with CandleHub(feeds, StateDir(root)) as hub:
            for endpoint in (hub.endpoints.pub, hub.endpoints.snapshot):
                assert endpoint.startswith("tcp://127.0.0.1:")
                assert int(endpoint.rsplit(":", 1)[1]) > 0  # the bound port, not `*`
            hub.acquire(K1M)
            async with HubSubscriber(hub.endpoints) as sub:
                await sub.subscribe([K1M])
                feeds["SIM"].push(candle(K1M, 0))
                (got,) = await take(sub, 1)
                assert got.candle == candle(K1M, 0)

    run(scenario())


def test_ipc_transport_refuses_a_path_that_cannot_fit(tmp_path: Path) -> None:
    root = tmp_path / ("deep-" * 20)

    async def scenario() -> None:
        hub = CandleHub(ScriptedFeeds(), StateDir(root), HubConfig(transport="ipc"))
        with pytest.raises(HubError, match="over the unix socket limit of 107"):
            await hub.start()

    run(scenario())


def test_endpoints_round_trip_for_the_spawn_spec() -> None:
    endpoints = HubEndpoints("ipc:///s/hub.sock", "tcp://127.0.0.1:5555")
    assert HubEndpoints.from_json(endpoints.to_json()) == endpoints
    with pytest.raises(ValueError, match="need 'pub' and 'snapshot' strings"):
        HubEndpoints.from_json({"pub": "ipc:///s/hub.sock"})


def test_close_is_bounded_when_a_feed_hangs(
    state_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Hanging(ScriptedFeeds):
        def __call__(self, broker: str):  # type: ignore[no-untyped-def]
            feed = super().__call__(broker)

            async def never() -> None:
                await asyncio.Event().wait()

            feed.aclose = never  # type: ignore[method-assign]
            return feed

    async def scenario() -> None:
        state = StateDir(state_root)
        hub = CandleHub(Hanging(), state, HubConfig(close_timeout_s=0.2))
        await hub.start()
        hub.acquire(K1M)
        await hub.aclose()
        assert not state.hub_socket.exists()

    run(scenario(), timeout=10)
    assert "closing feed SIM failed: TimeoutError()" in caplog.text
