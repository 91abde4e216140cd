"""A channel's bounded queue: at most one pending `Digest` per event kind, so a flood coalesces.

Fifty crashes within the coalescing window become one digest with `count == 50` and the number
per strategy; nothing is lost from the counts, and memory stays bounded however many arrive.
Summaries and test messages are kept one by one (they are few), up to `MAX_SINGLES`.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from qkt.notify.events import NEVER_COALESCED, Event, EventKind

MAX_SINGLES: Final = 16  # queued summaries/tests beyond this drop the oldest (counted)
MAX_NAMES: Final = 20  # strategies named in one digest; the rest are counted as "others"
OTHERS: Final = "others"


@dataclass(slots=True)
class Digest:
    """One message to send: `count` events of one kind, the latest in full."""

    kind: EventKind
    last: Event
    first_ms: int
    count: int = 1
    by_strategy: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, event: Event) -> Digest:
        digest = cls(event.kind, event, event.time_ms, 0)
        digest.add(event)
        return digest

    def add(self, event: Event) -> None:
        """Count `event` in and keep it as the latest."""
        self.count += 1
        self.first_ms = min(self.first_ms, event.time_ms)
        if event.time_ms >= self.last.time_ms:
            self.last = event
        if event.strategy is not None:
            name = event.strategy
            if name not in self.by_strategy and len(self.by_strategy) >= MAX_NAMES:
                name = OTHERS
            self.by_strategy[name] = self.by_strategy.get(name, 0) + 1

    def merge(self, other: Digest) -> None:
        """Fold another digest of the same kind in (a retry absorbing what arrived meanwhile)."""
        self.count += other.count
        self.first_ms = min(self.first_ms, other.first_ms)
        if other.last.time_ms >= self.last.time_ms:
            self.last = other.last
        for name, n in other.by_strategy.items():
            if name not in self.by_strategy and len(self.by_strategy) >= MAX_NAMES:
                name = OTHERS
            self.by_strategy[name] = self.by_strategy.get(name, 0) + n


class Pending:
    """The digests waiting for the channel's sender, in order of their first event."""

    def __init__(self) -> None:
        self._digests: OrderedDict[object, Digest] = OrderedDict()
        self._singles = 0
        self.dropped = 0  # events dropped because the queue was full

    def add(self, event: Event) -> bool:
        """Queue `event`; True if it was merged into a digest already waiting."""
        if event.kind in NEVER_COALESCED:
            if self._singles >= MAX_SINGLES:
                self._drop_oldest_single()
            self._singles += 1
            self._digests[object()] = Digest.of(event)
            return False
        waiting = self._digests.get(event.kind)
        if waiting is None:
            self._digests[event.kind] = Digest.of(event)
            return False
        waiting.add(event)
        return True

    def take(self, ready: Callable[[EventKind], bool] = lambda kind: True) -> list[Digest]:
        """The waiting digests whose kind is `ready`, oldest first; the rest stay queued."""
        taken = [(key, d) for key, d in self._digests.items() if ready(d.kind)]
        for key, digest in taken:
            del self._digests[key]
            self._singles -= digest.kind in NEVER_COALESCED
        return [digest for _, digest in taken]

    def kinds(self) -> set[EventKind]:
        return {d.kind for d in self._digests.values()}

    def events(self) -> int:
        return sum(d.count for d in self._digests.values())

    def __len__(self) -> int:
        return len(self._digests)

    def _drop_oldest_single(self) -> None:
        for key, digest in self._digests.items():
            if digest.kind in NEVER_COALESCED:
                del self._digests[key]
                self._singles -= 1
                self.dropped += digest.count
                return


def fold(into: list[Digest], more: list[Digest]) -> list[Digest]:
    """`into` with `more` merged in by kind (singles appended), keeping `into`'s order."""
    by_kind = {d.kind: d for d in into if d.kind not in NEVER_COALESCED}
    for digest in more:
        waiting = by_kind.get(digest.kind)
        if waiting is None or digest.kind in NEVER_COALESCED:
            into.append(digest)
            if digest.kind not in NEVER_COALESCED:
                by_kind[digest.kind] = digest
        else:
            waiting.merge(digest)
    return into


class FloodGate:
    """Per event kind, at most `burst` messages per `window_s`; what comes after waits for the
    window and then goes as one digest. Fifty crashes in a minute are `burst` + 1 messages."""

    def __init__(
        self, window_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window_s = window_s
        self._burst = max(burst, 1)
        self._clock = clock
        self._sent: dict[EventKind, deque[float]] = {}
        self.open = False  # at shutdown everything goes at once

    def ready(self, kind: EventKind) -> bool:
        return self.wait_s(kind) == 0

    def wait_s(self, kind: EventKind) -> float:
        """Seconds until a message of `kind` may go (0: now)."""
        times = self._sent.get(kind)
        if self.open or kind in NEVER_COALESCED or not times or len(times) < self._burst:
            return 0.0
        return max(0.0, times[0] + self._window_s - self._clock())

    def sent(self, kind: EventKind) -> None:
        times = self._sent.setdefault(kind, deque(maxlen=self._burst))
        times.append(self._clock())
