from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from livestack.schema import FixedPointError, format_fixed, parse_fixed


@pytest.mark.parametrize("text,dec,value", [
    ("61837.63000000", 2, 6183763),
    ("61837.63", 2, 6183763),
    ("0.00100000", 5, 100),
    ("0", 0, 0),
    ("-1.5", 1, -15),
    ("+7", 3, 7000),
    ("12.", 2, 1200),
    (".5", 1, 5),
    (b"61837.63000000", 8, 6183763000000),
    ("9223372036854775807", 0, 2**63 - 1),
])
def test_parses_exactly(text, dec, value):
    assert parse_fixed(text, dec) == value


@pytest.mark.parametrize("text,dec,match", [
    ("", 2, "not a decimal"),
    ("-", 2, "not a decimal"),
    ("1.2.3", 2, "not a decimal"),
    ("12a", 2, "not a decimal"),
    ("1e5", 2, "not a decimal"),
    (" 1", 2, "not a decimal"),
    ("61837.631", 2, "beyond 2 decimals"),
    ("9223372036854775808", 0, "outside int64"),
    ("92233720368547758.08", 3, "outside int64"),
    ("1", 19, "decimals 19"),
])
def test_rejects_with_a_clear_error(text, dec, match):
    with pytest.raises(FixedPointError, match=match):
        parse_fixed(text, dec)


def test_rejects_non_strings():
    with pytest.raises(FixedPointError, match="expected a decimal string"):
        parse_fixed(1.5, 2)


@given(st.integers(-(2**63) + 1, 2**63 - 1), st.integers(0, 18))
def test_format_then_parse_round_trips(v, dec):
    assert parse_fixed(format_fixed(v, dec), dec) == v


@given(st.decimals(min_value=-10**9, max_value=10**9, places=8, allow_nan=False, allow_infinity=False))
def test_agrees_with_decimal(d):
    assert parse_fixed(format(d, "f"), 8) == int(d.scaleb(8))
