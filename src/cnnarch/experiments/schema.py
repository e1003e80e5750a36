"""A JSON file read against typed dicts, field by field: the `TypedDict`s that say what a file
holds are its schema, checked here without a second description of it.

`read_json` parses strictly (NaN, Infinity and integers of more digits than a float holds are
not numbers here; nesting too deep for the parser is an error, not a crash); `check` walks a
value against a type and names the first field that does not fit, as `runs[2].history[0].epoch`.
"""

from __future__ import annotations

import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from cnnarch.errors import CnnarchError

# Integers beyond 2**53 lose their value as JSON numbers in most readers (a float's mantissa).
LARGEST_INT = 2**53


class SchemaError(CnnarchError):
    """A file that does not fit its schema; the message names the file and the field."""


class _NotANumber:
    """What the parser gives for a token that looks like a number but is not one here."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _parse_int(text: str) -> int | _NotANumber:
    digits = len(text.lstrip("-"))
    if digits > 16:  # more than 2**53 can hold; also spares int() Python's digit limit
        return _NotANumber(f"a {digits}-digit integer")
    return int(text)


def read_json(path: Path, what: str) -> Any:
    """The JSON value in `path`, parsed strictly.

    Args:
        path: the file.
        what: how a message names the file's content ("degradation results").
    """
    try:
        text = path.read_text("utf-8")
        return json.loads(text, parse_constant=_NotANumber, parse_int=_parse_int)
    except RecursionError:
        raise SchemaError(f"cannot read {what} {path}: nested too deeply") from None
    except (OSError, ValueError) as err:
        raise SchemaError(f"cannot read {what} {path}: {err}") from None


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, _NotANumber):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


def _expected(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if hint is bool:
        return "true or false"
    if hint is type(None):
        return "null"
    if origin is list:
        return "a list"
    if origin is dict or typing.is_typeddict(hint):
        return "an object"
    if origin is Literal:
        return " or ".join(repr(v) for v in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(a) for a in typing.get_args(hint))
    return str(hint)


def _fits(value: Any, hint: Any) -> bool:
    """Whether `value` is of `hint` at its top level (containers are walked by `check`)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return not isinstance(value, _NotANumber)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list)
    if origin is dict or typing.is_typeddict(hint):
        return isinstance(value, dict)
    if origin is Literal:
        return value in typing.get_args(hint)
    raise TypeError(f"no check for {hint!r}")


def check(value: Any, hint: Any, where: str, fail: typing.Callable[[str, str], None]) -> None:
    """Walk `value` against the type `hint`, calling `fail(field, problem)` at the first field
    that does not fit.

    Args:
        value: a parsed JSON value.
        hint: the type it should have (a TypedDict, list[...], a union, int, ...).
        where: the field's path so far ("" at the top).
        fail: raises with the field and the problem.
    """
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            if _fits(value, option):
                check(value, option, where, fail)
                return
        fail(where, f"must be {_expected(hint)}, got {_shown(value)}")
    if not _fits(value, hint):
        fail(where, f"must be {_expected(hint)}, got {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        fail(where, f"must be a finite number, got {value}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > LARGEST_INT:
        fail(where, f"must be an integer of at most 2^53, got {value:.3e}")
    if origin is list:
        (item,) = typing.get_args(hint)
        for index, element in enumerate(value):
            check(element, item, f"{where}[{index}]", fail)
    elif origin is dict:
        _, item = typing.get_args(hint)
        for key, element in value.items():
            check(element, item, f"{where}.{key}" if where else key, fail)
    elif typing.is_typeddict(hint):
        fields = typing.get_type_hints(hint)
        missing = [key for key in hint.__required_keys__ if key not in value]
        if missing:
            fail(where, f"is missing {', '.join(sorted(missing, key=list(fields).index))}")
        for key, field_hint in fields.items():
            if key in value:
                check(value[key], field_hint, f"{where}.{key}" if where else key, fail)
