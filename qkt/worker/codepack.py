"""`HotCode` and `pack_code()`: the code a worker runs, copied next to each other in the fork
server, so that what the workers write to it lands on as few pages as possible.

Python 3.11 writes to a code object whenever it runs it: its reference count at every call,
its warm-up counter over its first calls, and the inline caches of its bytecode (an instruction
that could not be specialized counts down in its cache at every execution). A forked worker
therefore turns every page holding code it runs into a private copy, even when the fork server
ran that code before. Imported code lies where the imports put it, a few functions a worker
runs among many it never does: the ~700 code objects a worker runs (~370 KiB) were spread over
~2 MiB of pages, each a private copy in every worker (docs/performance.md).

`HotCode` records the code objects run while it is active (the rehearsal of a worker's life);
`pack_code()` then replaces each function's code by a fresh copy, allocated one after the other
once the heaps have no free holes left to scatter them into. The copies are the same code
(`code.replace()`), only new objects: equal to the old ones, unquickened (the rehearsal after
packing warms them), and the old ones are freed unless something else still holds them.
"""

from __future__ import annotations

import gc
import sys
import types
from types import FrameType
from typing import Any, Final

# Code objects of these files are never copied: their functions run in the fork server itself
# while it packs, and what runs only there gains nothing from being packed.
_SKIP_FILES: Final = (__file__,)


class HotCode:
    """`with HotCode() as hot:` records every code object run (by this thread) in `hot.codes`,
    in the order first run."""

    def __init__(self) -> None:
        self.codes: dict[types.CodeType, None] = {}  # a dict: ordered, and a set's lookup
        self._saved: Any = None

    def __enter__(self) -> HotCode:
        self._saved = sys.getprofile()
        sys.setprofile(self._seen)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sys.setprofile(self._saved)

    def _seen(self, frame: FrameType, event: str, arg: object) -> None:
        if event == "call":  # a Python frame starting or resuming (a coroutine, a generator)
            self.codes[frame.f_code] = None


def code_of(*modules: types.ModuleType) -> dict[types.CodeType, None]:
    """The code of every function the modules define (their classes' methods, properties,
    static and class methods included), for code a worker runs that the rehearsal does not."""
    found: dict[types.CodeType, None] = {}
    for module in modules:
        for value in vars(module).values():
            members = vars(value).values() if isinstance(value, type) else (value,)
            for member in members:
                for function in _functions(member):
                    if function.__module__ == module.__name__:
                        found[function.__code__] = None
    return found


def _functions(member: object) -> tuple[types.FunctionType, ...]:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        return tuple(f for f in (member.fget, member.fset) if isinstance(f, types.FunctionType))
    return (member,) if isinstance(member, types.FunctionType) else ()


def pack_code(hot: dict[types.CodeType, None]) -> int:
    """Give every function whose code is in `hot` a fresh copy of it (code nested in a copied
    code object, a closure's or a comprehension's, copied too when it is hot); the number of
    functions changed."""
    copies: dict[types.CodeType, types.CodeType] = {}
    for code in hot:
        if code.co_filename not in _SKIP_FILES:
            _copy(code, hot, copies)
    changed = 0
    for obj in gc.get_objects():
        # type(), not isinstance(): a weak proxy among the objects whose referent is already
        # gone raises ReferenceError when isinstance() asks it for its __class__.
        if type(obj) is types.FunctionType:
            new = copies.get(obj.__code__)
            if new is not None:
                obj.__code__ = new
                changed += 1
    return changed


def _copy(
    code: types.CodeType,
    hot: dict[types.CodeType, None],
    copies: dict[types.CodeType, types.CodeType],
) -> types.CodeType:
    done = copies.get(code)
    if done is not None:
        return done
    consts = tuple(
        _copy(const, hot, copies) if isinstance(const, types.CodeType) and const in hot else const
        for const in code.co_consts
    )
    new = copies[code] = code.replace(co_consts=consts)
    return new
