"""Each wire record is spelled once: the dataclasses the daemon builds and the CLI parses, and
the pydantic models that declare them in OpenAPI, have the same fields; parsing refuses what
does not fit, naming the field."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from pydantic import BaseModel

from qkt.control import schemas
from qkt.hub import KeyStats
from qkt.records import RecordError, decode, decode_list, to_json
from qkt.supervisor import records
from qkt.supervisor.handle import WorkerState
from qkt.worker import record as worker_record
from qkt.worker import schemas as worker_schemas

PAIRS: list[tuple[type, type[BaseModel]]] = [
    (records.ListEntry, schemas.ListEntry),
    (records.DeployArgs, schemas.DeployArgs),
    (records.DaemonRecord, schemas.WorkerRecord),
    (records.RunningStatus, schemas.RunningStatus),
    (records.StopResult, schemas.StopResult),
    (records.HubKey, schemas.HubKey),
    (records.DaemonHealth, schemas.Health),
    (records.KeyFeed, schemas.KeyFeed),
    (records.NotifyChannel, schemas.NotifyChannel),
    (records.NotifyTestResult, schemas.NotifyTestResult),
    (worker_record.WorkerStatus, worker_schemas.StatusOut),
    (worker_record.PositionRecord, worker_schemas.PositionOut),
    (worker_record.TradeRecord, worker_schemas.TradeOut),
    (worker_record.OrderRecord, worker_schemas.OrderOut),
    (worker_record.SubscriberRecord, worker_schemas.SubscriberOut),
    (worker_record.EventsRecord, worker_schemas.EventsInfoOut),
]


def _wire_fields(record: type) -> list[str]:
    """The JSON keys of a record: its fields, but not the bag of a newer peer's extras."""
    return [f.name for f in dataclasses.fields(record) if not f.metadata.get("rest")]


@pytest.mark.parametrize(("record", "model"), PAIRS, ids=[r.__name__ for r, _ in PAIRS])
def test_the_openapi_model_declares_exactly_the_records_fields(
    record: type, model: type[BaseModel]
) -> None:
    assert sorted(_wire_fields(record)) == sorted(model.model_fields)


def test_the_hub_key_record_has_the_hubs_fields() -> None:
    assert _wire_fields(records.HubKey) == [f.name for f in dataclasses.fields(KeyStats)]


def test_every_state_is_a_state_name_in_the_schema() -> None:
    assert set(typing.get_args(records.StateName)) == {state.value for state in WorkerState}


ENTRY = {
    "name": "ema",
    "pid": 12,
    "port": None,
    "state": "backoff",
    "started_at": None,
    "uptime_ms": 0,
    "trades": None,
    "restarts": 1,
    "file": "/s/ema.qkt",
    "keys": ["SIM:BTCUSDT:1s"],
    "exit_code": -9,
    "error": "killed by SIGKILL",
    "restart_in_ms": 250,
    "args": {"balance": "10000", "fee_bps": "0", "slippage_bps": "0", "sim": False},
    "stale": False,
    "warming": None,
}


def test_a_list_entry_round_trips_and_ignores_what_a_newer_daemon_adds() -> None:
    entry = decode(records.ListEntry, {**ENTRY, "newer": 1})
    assert entry.args.balance == "10000" and entry.state == "backoff"
    assert to_json(entry) == ENTRY


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pid": "12"}, "ListEntry.pid: expected int"),
        ({"uptime_ms": True}, "ListEntry.uptime_ms: expected int"),
        ({"state": "dancing"}, "ListEntry.state: 'dancing' is not one of"),
        ({"keys": ["a", 1]}, r"ListEntry.keys\[1\]: expected str"),
        ({"args": {"balance": "1"}}, "ListEntry.args: missing field 'fee_bps'"),
    ],
)
def test_a_record_that_does_not_fit_is_refused_naming_the_field(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(RecordError, match=message):
        decode(records.ListEntry, {**ENTRY, **change})


def test_a_missing_field_and_a_non_list_are_refused() -> None:
    with pytest.raises(RecordError, match="missing field 'name'"):
        decode(records.ListEntry, {k: v for k, v in ENTRY.items() if k != "name"})
    with pytest.raises(RecordError, match="expected an array"):
        decode_list(records.ListEntry, {"not": "a list"})


def test_a_running_status_keeps_what_a_newer_worker_adds() -> None:
    status = {
        "strategy": "ema",
        "version": 1,
        "name": "ema",
        "pid": 1,
        "state": "running",
        "started_at": "2026-01-01T00:00:00.000Z",
        "uptime_ms": 5,
        "file": "/s/ema.qkt",
        "source_hash": "ab",
        "start_balance": "1",
        "balance": "1",
        "equity": "1",
        "realized": "0",
        "unrealized": "0",
        "total_pnl": "0",
        "fees": "0",
        "positions": [],
        "open_orders": [],
        "trades": 0,
        "last_trade": None,
        "keys": [],
        "last_candle_ts": {},
        "warm": True,
        "candles": {},
        "warmup_candles": 0,
        "fee_bps": "0",
        "slippage_bps": "0",
        "fill_at": "close",
        "sim": False,
        "subscriber": None,
        "events": {"last_id": 0, "subscribers": 0, "dropped": 0},
        "restarts": 0,
        "port": 4000,
        "file_changed": False,
        "stale": False,
        "warming": None,
        "feeds": [],
        "newer": {"x": 1},
    }
    parsed = records.parse_status(status)
    assert isinstance(parsed, records.RunningStatus) and parsed.extra == {"newer": {"x": 1}}
    assert to_json(parsed) == status
    record = records.parse_status(
        {**ENTRY, "gave_up": True, "last_log": ["x"], "source_hash": "ab", "file_changed": True}
    )
    assert isinstance(record, records.DaemonRecord) and record.gave_up
