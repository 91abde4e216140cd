"""Plain conversion of command-line values, so that a command does not import pydantic.

Recent typer versions convert every parameter through a pydantic `TypeAdapter`: importing
pydantic and building adapters costs more than the whole of `qkt list` should (issue 16: a
command answers in a few times Python's own start-up). qkt's parameters are plain `str`, `int`,
`float`, `Path`, `Literal` choices and lists of those: `install()` has typer convert exactly
these with the standard library, with the same checks (ranges, choices), and leaves anything
else (and any typer without this hook) to typer itself.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_Convert = Callable[[Any], Any]


def install() -> None:
    """Route typer's parameter conversion through `_plain` where it can (idempotent)."""
    try:
        from typer import _coercion, core
    except ImportError:  # a typer without the hook: nothing to do
        return
    original = getattr(core, "build_runtime_param", None)
    base = getattr(_coercion, "RuntimeParam", None)
    if original is None or base is None or getattr(original, "qkt_plain", False):
        return

    @dataclass(frozen=True)
    class PlainRuntimeParam(base):  # type: ignore[misc, valid-type]
        """Conversion without pydantic, with click's error for a bad value (exit 2)."""

        convert: _Convert

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return self.convert(value)
            except (TypeError, ValueError) as error:
                from typer._click.exceptions import BadParameter

                raise BadParameter(str(error), ctx=ctx, param=param) from None

    def build(descriptor: Any) -> Any:
        convert = None if descriptor.file_annotation is not None else _plain(descriptor)
        if convert is None:
            return original(descriptor)
        return PlainRuntimeParam(descriptor.parameter_info, descriptor.annotation, convert)

    build.qkt_plain = True  # type: ignore[attr-defined]
    setattr(core, "build_runtime_param", build)  # noqa: B010 (a private hook: no typed export)


def _plain(descriptor: Any) -> _Convert | None:
    info = descriptor.parameter_info
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return None
    annotation = _unwrap_optional(descriptor.annotation)
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        one = _leaf(item, info)
        if one is None:
            return None
        return lambda values: [one(v) for v in values]
    return _leaf(annotation, info)


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if type(None) in typing.get_args(annotation) and len(args) == 1:
        return args[0]
    return annotation


def _leaf(annotation: Any, info: Any) -> _Convert | None:
    if annotation is str:
        return str
    if annotation is bool:
        return _flag
    if annotation in (int, float) and not getattr(info, "clamp", False):
        return _number(annotation, getattr(info, "min", None), getattr(info, "max", None))
    if annotation is Path and not _path_checks(info):
        return lambda value: value if isinstance(value, Path) else Path(str(value))
    if typing.get_origin(annotation) is typing.Literal and getattr(info, "case_sensitive", True):
        return _choice(typing.get_args(annotation))
    return None


def _path_checks(info: Any) -> bool:
    """True if the parameter asks typer to check the path (left to typer)."""
    flags = ("exists", "writable", "resolve_path", "allow_dash")
    return (
        any(getattr(info, flag, False) for flag in flags)
        or not getattr(info, "file_okay", True)
        or not getattr(info, "dir_okay", True)
    )


_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off", ""})


def _flag(value: Any) -> bool:
    """A flag's value: a bool as it is, or a word from the environment (`1`, `yes`, `off`)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError(f"{value!r} is not a valid boolean.")


def _number(kind: type, low: float | None, high: float | None) -> _Convert:
    name = "an integer" if kind is int else "a number"

    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not {name}.")
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not {name}.") from None
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = " and ".join(
                part
                for part in (
                    None if low is None else f">= {low}",
                    None if high is None else f"<= {high}",
                )
                if part
            )
            raise ValueError(f"{number} is not in the range: it must be {bounds}.")
        return number

    return convert


def _choice(options: tuple[Any, ...]) -> _Convert:
    def convert(value: Any) -> Any:
        for option in options:
            if value == option or str(value) == str(option):
                return option
        listed = ", ".join(repr(str(o)) for o in options)
        raise ValueError(f"{value!r} is not one of {listed}.")

    return convert
