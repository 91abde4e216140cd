"""`Secret`: a token or URL that must never reach a log, an error, a repr or a status answer."""

from __future__ import annotations

from typing import Final

MASK: Final = "***"


class Secret:
    """A string that prints as `***`; only `reveal()` gives the value, at the point of use."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source  # where it came from ("env QKT_TG_TOKEN"), safe to show

    def reveal(self) -> str:
        """The value itself, for the one HTTP request that needs it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK} from {self.source})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        # `dataclasses.asdict` deep-copies: keep the masked object, not a plain string.
        return self

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling (or copying through multiprocessing) must not carry the value by accident.
        raise TypeError("a Secret is not serialisable")
