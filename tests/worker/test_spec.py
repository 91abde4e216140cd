"""The worker spec round-trips and refuses what it cannot read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from qkt.worker.spec import SPEC_VERSION, SpecError, WorkerSpec


def _spec() -> WorkerSpec:
    return WorkerSpec(
        name="ema-fast",
        file="/tmp/x.qkt",
        source="STRATEGY x VERSION 1\n",
        state_dir="/tmp/state",
        hub_pub="ipc:///tmp/state/hub.sock",
        hub_snapshot="ipc:///tmp/state/hub-snapshot.sock",
        balance="2500.50",
        parent_pid=123,
    )


def test_round_trip_keeps_every_field() -> None:
    spec = _spec()
    assert WorkerSpec.from_json(spec.to_json()) == spec


def test_money_fields_are_exact_decimals() -> None:
    assert str(_spec().money("balance")) == "2500.50"


def test_paths_live_in_the_state_dir() -> None:
    spec = _spec()
    assert str(spec.journal_file) == "/tmp/state/strategies/ema-fast/journal.sqlite"
    assert str(spec.log_file) == "/tmp/state/logs/ema-fast.log"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw.update(version=SPEC_VERSION + 1), "version"),
        (lambda raw: raw.update(surprise=1), "unknown worker spec fields: surprise"),
        (lambda raw: raw.pop("name"), "bad worker spec"),
    ],
)
def test_unreadable_specs_are_refused(
    mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    raw = orjson.loads(_spec().to_json())
    mutate(raw)
    with pytest.raises(SpecError, match=message):
        WorkerSpec.from_json(orjson.dumps(raw))


def test_garbage_is_refused() -> None:
    with pytest.raises(SpecError, match="not JSON"):
        WorkerSpec.from_json(b"{nope")
