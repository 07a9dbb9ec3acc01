"""Typed strategy parameters: a strategy declares ``Params`` (a ``msgspec.Struct`` or a dataclass)
and gets them validated, converted and laid out as int64 words in the context block.

=================  ==================================  =========================================
field type         TOML value                          word in the block / value in ``params``
=================  ==================================  =========================================
``int``            integer                             the integer
``bool``           true / false                        1 / 0
``float``          number                              the float64's bits (numba / Cython read it
                                                       as a double: ``ctx.params`` record field)
``str``            string                              0 (Python strategies only: ``self.params``)
``Price``          decimal string or number ("0.5")    int fixed point: value * 10**price_decimals
``Qty``            decimal string or number            int fixed point: value * 10**qty_decimals
=================  ==================================  =========================================

A price or quantity that is not a whole number of fixed-point units of the strategy's instrument
is rejected (never rounded). Every error is a :class:`ParamError` naming the strategy, the param
and the expected type.
"""

from __future__ import annotations

import dataclasses
import math
import struct
import typing
from decimal import Decimal, InvalidOperation
from typing import Annotated

import numpy as np


class FixedPoint:
    """Marker in ``Annotated[Decimal, FixedPoint(...)]``: a decimal in the instrument's units."""

    def __init__(self, kind: str):
        self.kind = kind  # "price" | "qty"

    def __repr__(self):
        return f"FixedPoint({self.kind!r})"


Price = Annotated[Decimal, FixedPoint("price")]
Qty = Annotated[Decimal, FixedPoint("qty")]


class ParamError(ValueError):
    """A strategy parameter is unknown, missing, of the wrong type or not exact in fixed point."""


@dataclasses.dataclass(frozen=True)
class ParamField:
    name: str
    kind: str            # int | bool | float | str | price | qty
    default: object      # dataclasses.MISSING / msgspec.NODEFAULT when required

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING or type(self.default).__name__ == "NoDefault"


def _kind(tp) -> str:
    if typing.get_origin(tp) is Annotated:
        for m in typing.get_args(tp)[1:]:
            if isinstance(m, FixedPoint):
                return m.kind
        tp = typing.get_args(tp)[0]
    for t, k in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if tp is t:
            return k
    if tp is Decimal:
        raise TypeError("a Decimal param must say its unit: use livestack.strategies.sdk.Price or Qty")
    raise TypeError(f"unsupported param type {tp!r} (int, bool, float, str, Price, Qty)")


def fields(cls) -> list[ParamField]:
    """The declared params of ``cls`` (a msgspec Struct or a dataclass; None: no params)."""
    if cls is None:
        return []
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            out.append(ParamField(f.name, _kind(hints[f.name]), default))
        return out
    try:
        import msgspec
    except ImportError:  # pragma: no cover
        msgspec = None
    if msgspec is not None and isinstance(cls, type) and issubclass(cls, msgspec.Struct):
        for f in msgspec.structs.fields(cls):
            default = f.default if f.default_factory is msgspec.NODEFAULT else f.default_factory()
            out.append(ParamField(f.name, _kind(hints[f.name]), default))
        return out
    raise TypeError(f"Params must be a msgspec.Struct or a dataclass, got {cls!r}")


_EXPECT = {"int": "an integer", "bool": "a boolean", "float": "a number", "str": "a string",
           "price": "a decimal price (e.g. \"0.5\")", "qty": "a decimal quantity (e.g. \"0.001\")"}


def _decimal(v):
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, Decimal):
        return v
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise TypeError
        return Decimal(repr(v))  # the shortest decimal that reads back as v (TOML's 0.1 is "0.1")
    if isinstance(v, str):
        d = Decimal(v.strip())
        if not d.is_finite():
            raise TypeError
        return d
    raise TypeError


def convert_value(strategy: str, f: ParamField, v, instrument):
    """(word, typed value) of one param; ParamError naming strategy, param and expected type."""
    where = f"strategy {strategy!r}: param {f.name!r}"
    bad = ParamError(f"{where}: expected {_EXPECT[f.kind]}, got {v!r}")
    if f.kind == "bool":
        if not isinstance(v, bool):
            raise bad
        return int(v), v
    if f.kind == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad
        if not -(1 << 63) <= v < (1 << 63):
            raise ParamError(f"{where}: {v} does not fit in int64")
        return v, v
    if f.kind == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad
        return struct.unpack("<q", struct.pack("<d", float(v)))[0], float(v)
    if f.kind == "str":
        if not isinstance(v, str):
            raise bad
        return 0, v
    try:
        d = _decimal(v)
    except (TypeError, InvalidOperation):
        raise bad from None
    if instrument is None:
        raise ParamError(f"{where}: a {f.kind} needs the strategy's instrument (none configured)")
    decimals = instrument.price_decimals if f.kind == "price" else instrument.qty_decimals
    scaled = d.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ParamError(f"{where}: {v!r} is not exact in {instrument.symbol}'s {f.kind} units "
                         f"({decimals} decimals); expected {_EXPECT[f.kind]} with at most {decimals} decimals")
    word = int(scaled)
    if not -(1 << 63) <= word < (1 << 63):
        raise ParamError(f"{where}: {v!r} does not fit in int64 fixed point")
    return word, word


def convert(strategy: str, cls, raw: dict | None, instrument=None):
    """Validate ``raw`` against ``cls``: returns (names, words, typed instance or None).

    The typed instance holds ints for Price/Qty (the fixed-point units every flavour sees)."""
    raw = dict(raw or {})
    try:
        decl = fields(cls)
    except TypeError as e:
        raise ParamError(f"strategy {strategy!r}: Params: {e}") from None
    known = {f.name for f in decl}
    for k in raw:
        if k not in known:
            raise ParamError(f"strategy {strategy!r}: unknown param {k!r} (known: {sorted(known) or 'none'})")
    names, words, values = [], [], {}
    for f in decl:
        if f.name in raw:
            v = raw[f.name]
        elif f.required:
            raise ParamError(f"strategy {strategy!r}: param {f.name!r} is required ({_EXPECT[f.kind]})")
        else:
            v = f.default
        word, typed = convert_value(strategy, f, v, instrument)
        names.append(f.name)
        words.append(word)
        values[f.name] = typed
    typed_obj = cls(**values) if cls is not None else None
    return tuple(names), tuple(words), typed_obj


def record_dtype(cls) -> np.dtype:
    """The params words as a numpy/numba record (float params as float64; at least one word)."""
    decl = fields(cls)
    if not decl:
        return np.dtype([("_none", np.int64)])
    return np.dtype([(f.name, np.float64 if f.kind == "float" else np.int64) for f in decl])
