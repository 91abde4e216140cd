"""A channel's bounded queue: at most one pending `Digest` per event kind, so a flood coalesces.

Fifty crashes within the coalescing window become one digest with `count == 50` and the number
per strategy; nothing is lost from the counts, and memory stays bounded however many arrive.
Summaries and test messages are kept one by one (they are few), up to `MAX_SINGLES`.
"""

from __future__ import annotations

from collections import OrderedDict
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

    def take(self) -> list[Digest]:
        """Everything waiting, oldest first; the queue is empty afterwards."""
        digests = list(self._digests.values())
        self._digests.clear()
        self._singles = 0
        return digests

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
