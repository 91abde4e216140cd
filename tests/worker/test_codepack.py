"""Packing the code a worker runs: what is recorded, what is copied, and that the copies run."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable

from qkt.worker import codepack
from qkt.worker.codepack import HotCode, code_of, pack_code


def _outer(n: int) -> Callable[[int], int]:
    def inner(m: int) -> int:
        return n + m

    return inner


async def _coroutine() -> int:
    return 7


def _never_run() -> int:
    return 1


class _Shape:
    def area(self) -> int:
        return 2

    @staticmethod
    def kind() -> str:
        return "shape"

    @classmethod
    def make(cls) -> _Shape:
        return cls()

    @property
    def sides(self) -> int:
        return 4


def test_hot_code_records_what_runs_and_puts_the_previous_profiler_back() -> None:
    def previous(frame: object, event: str, arg: object) -> None:
        pass

    sys.setprofile(previous)
    try:
        with HotCode() as hot:
            _outer(1)(2)
            coroutine = _coroutine()
            try:
                coroutine.send(None)
            except StopIteration:
                pass
        assert sys.getprofile() is previous
    finally:
        sys.setprofile(None)
    nested = _outer(0).__code__
    assert {_outer.__code__, nested, _coroutine.__code__} <= hot.codes.keys()
    assert _never_run.__code__ not in hot.codes


def test_pack_code_gives_hot_functions_equal_copies_that_still_run() -> None:
    old_outer = _outer.__code__
    old_inner = next(c for c in old_outer.co_consts if isinstance(c, types.CodeType))
    old_never = _never_run.__code__
    hot = {old_outer: None, old_inner: None}
    assert pack_code(hot) == 1  # one function holds the outer code; the inner one is nested
    assert _outer.__code__ is not old_outer and _outer.__code__ == old_outer
    assert _outer(3)(4) == 7
    new_inner = _outer(0).__code__  # made at run time from the copy's constants
    assert new_inner is not old_inner and new_inner == old_inner
    assert _never_run.__code__ is old_never  # not hot: left where it is


def test_pack_code_leaves_code_of_its_own_module_alone() -> None:
    own = codepack.pack_code.__code__
    assert pack_code({own: None}) == 0
    assert codepack.pack_code.__code__ is own


def test_code_of_finds_functions_and_methods_a_module_defines() -> None:
    found = code_of(sys.modules[__name__])
    wanted = {
        _outer.__code__,
        _never_run.__code__,
        _Shape.area.__code__,
        _Shape.kind.__code__,
        _Shape.make.__func__.__code__,
        _Shape.sides.fget.__code__,  # type: ignore[attr-defined]
    }
    assert wanted <= found.keys()
    assert code_of.__code__ not in found  # imported here, defined elsewhere
