"""Declared types and ranges of options, and the one checker that enforces them.

An option's type is its annotation (a dataclass field of the config schema, or a keyword argument
of a method's, loss's or data set's constructor); its range is declared beside it with
:func:`option_ranges`::

    @METHODS.register("sar")
    @option_ranges(trade_off=at_least(0), filter_conf=between(0, 1, low_open=True))
    class SAR(Regularizer):
        def __init__(self, num_classes, feat_dim, class_counts, trade_off: float = 0.1, ...): ...

:func:`check_options` reads both, so adding a method, loss or schema key never touches the checker.
A bad value is a :class:`UserError` naming the config key, the value and the allowed range.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import typing
from dataclasses import dataclass
from typing import Any, Callable

from lt_bench.errors import UserError


@dataclass(frozen=True)
class Interval:
    """A closed, open or half-open interval of real numbers; ``None`` is an unbounded side."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False  # NaN, and infinities: no option is meant to be infinite
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (
            self.high is not None and (value > self.high or (self.high_open and value == self.high))
        )

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values (strings, or values such as ``"auto"``, ``True``, ``False``)."""

    values: tuple

    def __contains__(self, value: object) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def __str__(self) -> str:
        return "one of " + ", ".join(
            str(v).lower() if isinstance(v, bool) else str(v) for v in self.values
        )


def at_least(low: float) -> Interval:
    return Interval(low=low)


def greater_than(low: float) -> Interval:
    return Interval(low=low, low_open=True)


def between(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Interval:
    return Interval(low, high, low_open, high_open)


def one_of(*values) -> OneOf:
    return OneOf(tuple(values))


Range = typing.Union[Interval, OneOf]


def option_ranges(**ranges: Range) -> Callable:
    """Declare the allowed ranges of a class's (or function's) options; subclasses inherit them."""

    def decorate(owner):
        inherited = getattr(owner, "__option_ranges__", {})
        owner.__option_ranges__ = {**inherited, **ranges}
        return owner

    return decorate


def declared_ranges(owner) -> dict[str, Range]:
    return dict(getattr(owner, "__option_ranges__", {}))


def declared_types(owner) -> dict[str, Any]:
    """Option name -> annotation: the fields of a dataclass, or the keyword arguments of a callable
    (a class's ``__init__``) after the positional ones it is always given."""
    if dataclasses.is_dataclass(owner):
        hints = typing.get_type_hints(owner)
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(owner)}
    function = owner.__init__ if inspect.isclass(owner) else owner
    hints = typing.get_type_hints(function)
    params = inspect.signature(function).parameters
    given = set(getattr(owner, "given_arguments", ()))  # always passed by the caller: not options
    return {
        name: hints.get(name, Any)
        for name, p in params.items()
        if (p.default is not p.empty or p.kind is p.KEYWORD_ONLY)
        and p.kind is not p.VAR_KEYWORD
        and name not in given
    }


def declared_defaults(owner) -> dict[str, Any]:
    """Option name -> default value, for the options :func:`declared_types` lists."""
    if dataclasses.is_dataclass(owner):
        return dataclasses.asdict(owner())
    types = declared_types(owner)
    function = owner.__init__ if inspect.isclass(owner) else owner
    params = inspect.signature(function).parameters
    return {name: p.default for name, p in params.items() if name in types and p.default is not p.empty}


def _type_name(kind) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def type_text(kind) -> str:
    """An annotation as a reader writes it: ``float``, ``float | None``, ``list[int]``, ``any``."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any or kind is inspect.Parameter.empty:
        return "any"
    if kind is type(None):
        return "None"
    if origin is typing.Union or type(kind).__name__ == "UnionType":  # Optional[int], int | None
        return " | ".join(type_text(arg) for arg in args)
    if origin is not None and args:
        name = getattr(origin, "__name__", None) or str(origin).replace("typing.", "")
        return f"{name}[{', '.join(type_text(arg) for arg in args if arg is not Ellipsis)}]"
    return _type_name(kind)


def check_type(key: str, value, kind) -> None:
    """Refuse a value whose type does not match the annotation (ints are accepted for floats)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any or kind is object:
        return
    if origin is typing.Union:
        if value is None and type(None) in args:
            return
        for arg in args:
            if arg is not type(None):
                return check_type(key, value, arg)
        return
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(
                f"{key}={value!r} must be a list of {_type_name(args[0]) if args else 'values'}"
            )
        for item in value:
            if args:
                check_type(key, item, args[0])
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{key}={value!r} must be a mapping of key: value")
        return
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(kind, True)
    if not ok:
        expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
        raise UserError(f"{key}={value!r} must be {expected[kind]}; fix the value")


def check_value(key: str, value, kind, allowed: Range | None) -> None:
    check_type(key, value, kind)
    if allowed is None or value is None:
        return
    listed = typing.get_origin(kind) in (list, tuple)
    items = (
        value
        if isinstance(value, (list, tuple)) and (listed or isinstance(allowed, Interval))
        else [value]
    )
    for item in items:
        if item not in allowed:
            shown = str(value).lower() if isinstance(value, bool) else value
            raise UserError(f"{key}={shown} is out of range; allowed: {allowed}")


def check_options(owner, values: dict, prefix: str, what: str | None = None) -> None:
    """Check ``values`` against ``owner``'s declared types and ranges: unknown names (with a close
    match), wrong types and out-of-range values are one-line :class:`UserError`\\ s naming
    ``prefix + name``. ``what`` names the owner in the unknown-option message."""
    types, ranges = declared_types(owner), declared_ranges(owner)
    accepts_any = not dataclasses.is_dataclass(owner) and any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        for p in inspect.signature(
            owner.__init__ if inspect.isclass(owner) else owner
        ).parameters.values()
    )
    for name, value in values.items():
        if name not in types:
            if accepts_any:
                continue
            close = difflib.get_close_matches(name, list(types), n=1)
            hint = (
                f"did you mean {close[0]}?"
                if close
                else f"it takes: {', '.join(types) or 'nothing'}"
            )
            raise UserError(f"{what or prefix.rstrip('.')} has no option {name!r}; {hint}")
        check_value(prefix + name, value, types[name], ranges.get(name))


def undeclared_numeric_options(owner) -> list[str]:
    """Numeric options (int, float, or lists / optionals of them) without a declared range."""
    ranges = declared_ranges(owner)

    def numeric(kind) -> bool:
        if kind in (int, float):
            return True
        return any(numeric(arg) for arg in typing.get_args(kind) if arg is not type(None))

    return [
        name for name, kind in declared_types(owner).items() if numeric(kind) and name not in ranges
    ]
