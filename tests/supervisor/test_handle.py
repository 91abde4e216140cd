"""The worker handle's life cycle: named transitions, and the impossible ones refused."""

from __future__ import annotations

import pytest

from qkt.market.models import CandleKey
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.handle import TRANSITIONS, IllegalTransition, WorkerHandle, WorkerState

S = WorkerState


def _handle(state: WorkerState = S.STARTING) -> WorkerHandle:
    deployment = Deployment("ema", "/s/ema.qkt", source="STRATEGY ema VERSION 1\n")
    return WorkerHandle(deployment, (CandleKey.parse("SIM:BTCUSDT:1s"),), state=state)


def test_a_life_with_a_crash_a_backoff_a_restart_and_a_stop() -> None:
    handle = _handle()
    handle.spawned(100)
    handle.ready(4000)
    assert (handle.state, handle.port, handle.deployment.port) == (S.RUNNING, 4000, 4000)
    handle.crashed(-9, ("last line",), now=10.0)
    assert (handle.state, handle.pid, handle.port, handle.exit_code) == (S.CRASHED, None, None, -9)
    handle.back_off(11.0, "killed by SIGKILL")
    assert handle.state is S.BACKOFF and handle.entry().restart_in_ms is not None
    handle.restart()
    assert (handle.state, handle.restarts, handle.restart_at) == (S.RESTARTING, 1, None)
    handle.spawned(101)
    handle.ready(4000)
    handle.stopping()
    handle.stopped(0)
    assert (handle.state, handle.pid, handle.exit_code) == (S.STOPPED, None, 0)


def test_giving_up_is_the_failed_state_and_the_record_says_gave_up() -> None:
    handle = _handle(S.RUNNING)
    handle.crashed(3, (), now=1.0)
    handle.give_up("crashed 3 times")
    record = handle.record()
    assert record.state == "failed" and record.gave_up is True and record.restart_in_ms is None
    handle.stopping()  # a failed strategy can still be stopped (and so forgotten)
    assert handle.state is S.STOPPING


@pytest.mark.parametrize("transition", sorted(TRANSITIONS))
def test_every_transition_refuses_the_states_it_may_not_leave(transition: str) -> None:
    allowed, _ = TRANSITIONS[transition]
    for state in set(WorkerState) - allowed:
        handle = _handle(state)
        with pytest.raises(IllegalTransition, match=f"cannot go {transition!r}"):
            handle._move(transition)
        assert handle.state is state  # unchanged


@pytest.mark.parametrize(
    ("state", "act"),
    [
        (S.RUNNING, lambda h: h.ready(1)),  # ready twice
        (S.BACKOFF, lambda h: h.crashed(1, (), 0.0)),  # crashed without a process
        (S.FAILED, lambda h: h.restart()),  # given up means no restart
        (S.STOPPED, lambda h: h.stopping()),
        (S.RUNNING, lambda h: h.spawned(1)),  # a second process beside a running one
    ],
)
def test_impossible_steps_are_refused(state: WorkerState, act: object) -> None:
    handle = _handle(state)
    with pytest.raises(IllegalTransition):
        act(handle)  # type: ignore[operator]
