"""Typed params: declared once (msgspec Struct or dataclass), converted exactly to fixed point,
every error naming the strategy, the param and the expected type."""

from __future__ import annotations

import dataclasses
import struct
from decimal import Decimal

import msgspec
import pytest

from livestack.config import Instrument
from livestack.strategies.params import ParamError, Price, Qty, convert, record_dtype

INST = Instrument(1, "BTCUSDT", "sim", price_decimals=2, qty_decimals=3, tick=10, lot=1)


class P(msgspec.Struct, forbid_unknown_fields=True):
    edge: Price = Decimal("0.50")
    size: Qty = Decimal("0.001")
    levels: int = 3
    hedge: bool = False
    alpha: float = 0.25
    label: str = "x"


@dataclasses.dataclass
class D:
    size: Qty
    levels: int = 1


def test_defaults_and_overrides_convert_to_fixed_point_words():
    names, words, typed = convert("s", P, {"edge": "1.25", "size": 2, "hedge": True}, INST)
    assert names == ("edge", "size", "levels", "hedge", "alpha", "label")
    assert words[:4] == (125, 2000, 3, 1)
    assert struct.unpack("<d", struct.pack("<q", words[4]))[0] == 0.25
    assert words[5] == 0
    assert typed.edge == 125 and typed.size == 2000 and typed.label == "x"


def test_decimals_need_an_instrument():
    with pytest.raises(ParamError, match="instrument"):
        convert("s", P, {}, None)


def test_convert_uses_the_instrument_scale():
    _, words, _ = convert("s", P, {"edge": 0.1, "size": "0.010"}, INST)
    assert words[0] == 10 and words[1] == 10


@pytest.mark.parametrize("raw, msg", [
    ({"edge": "0.001"}, r"strategy 'mine': param 'edge': '0.001' is not exact .*price"),
    ({"size": "0.0005"}, r"param 'size'.*not exact.*qty"),
    ({"levels": "3"}, r"strategy 'mine': param 'levels': expected an integer, got '3'"),
    ({"levels": True}, r"param 'levels': expected an integer"),
    ({"hedge": 1}, r"param 'hedge': expected a boolean"),
    ({"alpha": "x"}, r"param 'alpha': expected a number"),
    ({"label": 3}, r"param 'label': expected a string"),
    ({"edge": "abc"}, r"param 'edge': expected a decimal price"),
    ({"edge": float("nan")}, r"param 'edge': expected a decimal price"),
    ({"nope": 1}, r"strategy 'mine': unknown param 'nope'"),
])
def test_bad_values_are_rejected_with_strategy_param_and_type(raw, msg):
    with pytest.raises(ParamError, match=msg):
        convert("mine", P, raw, INST)


def test_dataclass_params_and_required_fields():
    with pytest.raises(ParamError, match="param 'size' is required"):
        convert("d", D, {}, INST)
    names, words, typed = convert("d", D, {"size": "1"}, INST)
    assert names == ("size", "levels") and words == (1000, 1) and typed.size == 1000


def test_record_dtype_names_every_param_and_keeps_floats_as_doubles():
    dt = record_dtype(P)
    assert dt.names == ("edge", "size", "levels", "hedge", "alpha", "label")
    assert dt["alpha"].kind == "f" and dt["edge"].kind == "i" and dt.itemsize == 48
    assert record_dtype(None).itemsize == 8
