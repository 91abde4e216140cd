"""Wire records: immutable dataclasses that a producer builds, a server returns and a client parses.

A record's fields are spelled once, in its dataclass; `to_json` gives the JSON object and
`decode(Record, raw)` reads one back, checking every field's type, so a reader (the CLI) needs
neither pydantic nor the producer's modules. The control plane's pydantic models are checked
against these dataclasses by a test, so the OpenAPI schema cannot drift from them.

Supported field types: `str`, `int`, `float`, `bool`, `None` unions, `list[T]`, `dict[str, T]`,
`Any` (passed through as JSON) and nested record dataclasses.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from typing import Any, Final, TypeVar, Union, dataclass_transform

from qkt.errors import QktError

R = TypeVar("R")
T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def wire_record(cls: type[T]) -> type[T]:
    """A wire record: a slotted dataclass that the type checker holds immutable (assigning to
    a field is a mypy error, as for `frozen=True`).

    Not frozen at run time: on Python 3.11 a frozen dataclass takes twice as long to define
    (three more generated methods), every CLI command defines twenty of these before it can
    print a line, and that was a fifth of a `qkt list`. A record is also not hashable.
    """
    return dataclasses.dataclass(slots=True)(cls)


class RecordError(QktError):
    """A JSON object that is not the record it should be (a newer or broken peer)."""


REST: Final = {"rest": True}
"""Field metadata: this `dict[str, Any]` field holds the object's unknown keys (what a newer
peer adds passes through); `to_json` puts them back at the top level."""


OMIT_NONE: Final = {"omit_none": True}
"""Field metadata: left out of the JSON while None (a field a newer peer added: an older
reader's view of the object stays exactly what it was)."""


def to_json(record: object) -> dict[str, Any]:
    """The record as a JSON-able dict (nested records too), in field order."""
    assert dataclasses.is_dataclass(record) and not isinstance(record, type)
    data: dict[str, Any] = _plain(record)
    for field in _fields(type(record)):
        if field.metadata.get("rest"):
            data.update(data.pop(field.name))
        elif field.metadata.get("omit_none") and data[field.name] is None:
            del data[field.name]
    return data


_LEAVES: Final = frozenset({str, int, float, bool, type(None)})


# Worked out once per record class (or field type), not once per record: a `qkt list` of a
# thousand strategies writes and reads a thousand records.
@functools.cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    """`dataclasses.fields(cls)`."""
    return dataclasses.fields(cls)


def _plain(value: Any) -> Any:
    """`dataclasses.asdict` for the field types records have, without its deep copy of every
    string and number (immutable: the copy is the same object), which made a `GET /list` of a
    thousand strategies spend 30 ms in `copy.deepcopy`."""
    kind = type(value)
    if kind in _LEAVES:
        return value
    if dataclasses.is_dataclass(kind):
        return {f.name: _plain(getattr(value, f.name)) for f in _fields(kind)}
    if isinstance(value, list | tuple):
        return kind(_plain(each) for each in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return copy.deepcopy(value)


def decode(cls: type[R], raw: object, *, where: str = "") -> R:
    """`raw` (parsed JSON) as a `cls`; RecordError naming the first field that does not fit.

    Unknown fields are ignored (a newer daemon may say more); missing ones are errors unless
    the dataclass gives them a default.
    """
    where = where or cls.__name__
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: expected an object, got {type(raw).__name__}")
    values: dict[str, Any] = {}
    slots, known = _plan(typing.cast(type, cls))  # mypy: a type[R] may not be Hashable
    for slot in slots:
        if slot.rest:
            values[slot.name] = {k: v for k, v in raw.items() if k not in known}
            continue
        value = raw.get(slot.name, _MISSING)
        if value is _MISSING:
            if slot.required:
                raise RecordError(f"{where}: missing field {slot.name!r}")
        elif type(value) in slot.exact:  # a string, a number, a null: taken as it is
            values[slot.name] = value
        else:
            values[slot.name] = _value(slot.hint, value, f"{where}.{slot.name}")
    return cls(**values)


def decode_list(cls: type[R], raw: object, *, where: str = "") -> list[R]:
    """A JSON array of `cls` records."""
    where = where or f"list of {cls.__name__}"
    if not isinstance(raw, list):
        raise RecordError(f"{where}: expected an array, got {type(raw).__name__}")
    return [decode(cls, item, where=f"{where}[{i}]") for i, item in enumerate(raw)]


_MISSING: Final = object()


@dataclasses.dataclass(frozen=True, slots=True)
class _Slot:
    """How `decode` reads one field of a record class (`_plan`)."""

    name: str
    hint: Any  # the field's resolved type
    exact: frozenset[type]  # what it takes as it is (`_exact_types`)
    required: bool  # no default
    rest: bool  # holds the object's unknown keys (REST)


@functools.cache
def _plan(cls: type) -> tuple[tuple[_Slot, ...], frozenset[str]]:
    """The slots of `cls` and its field names."""
    hints = _hints(cls)
    slots = tuple(
        _Slot(
            field.name,
            hints[field.name],
            _exact_types(hints[field.name]),
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING,
            bool(field.metadata.get("rest")),
        )
        for field in _fields(cls)
    )
    return slots, frozenset(slot.name for slot in slots)


@functools.cache
def _exact_types(kind: Any) -> frozenset[type]:
    """The types whose values a field of type `kind` takes as they are, when a type check is
    all it takes (`str`, `int`, `bool`, None and unions of them); empty for anything else."""
    union = typing.get_origin(kind) in (Union, types.UnionType)
    options = typing.get_args(kind) if union else (kind,)
    plain = all(option in (str, int, bool, type(None)) for option in options)
    return frozenset(options) if plain else frozenset()


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of `cls` (annotations are strings here)."""
    return typing.get_type_hints(cls)


def _value(kind: Any, value: object, where: str) -> Any:
    if kind is Any or type(value) in _exact_types(kind):
        return value
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _value(option, value, where)
            except RecordError as error:
                errors.append(error)
        raise errors[0] if errors else RecordError(f"{where}: unexpected null")
    if origin is typing.Literal:
        if value not in typing.get_args(kind):
            raise RecordError(f"{where}: {value!r} is not one of {typing.get_args(kind)}")
        return value
    if origin is list or origin is tuple:
        if not isinstance(value, list):
            raise RecordError(f"{where}: expected an array, got {type(value).__name__}")
        (item,) = typing.get_args(kind)[:1]
        items = [_value(item, each, f"{where}[{i}]") for i, each in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
        _, item = typing.get_args(kind)
        return {str(k): _value(item, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(kind):
        return decode(kind, value, where=where)  # type: ignore[arg-type]
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind in (str, bool) and isinstance(value, kind):
        return value
    elif kind is type(None) and value is None:
        return None
    raise RecordError(f"{where}: expected {getattr(kind, '__name__', kind)}, got {value!r:.60}")
