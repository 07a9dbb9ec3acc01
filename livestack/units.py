"""Currencies of an instrument and values with units (``5 BTC``, ``100 USDT``, ``0.5%``, ``50 bps``).

An instrument's base and quote currencies come from its symbol (``BTCUSDT`` -> BTC, USDT; the
longest known quote currency that ends the symbol); the simulated ``SIM`` quotes in USD. Sizes are
in the base currency, prices, notionals and PnL in the quote currency.
"""

from __future__ import annotations

import re

#: quote currencies recognised at the end of a symbol (longest first)
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "JPY", "TRY", "BRL", "BTC",
          "ETH", "BNB")


def currencies(symbol: str) -> tuple[str, str]:
    """(base, quote) of ``symbol``; ("SIM", "USD") for the simulated instrument; (symbol, "quote")
    when no known quote currency ends it."""
    s = symbol.upper().replace("-", "").replace("/", "").replace("_", "")
    if s == "SIM":
        return "SIM", "USD"
    for q in sorted(QUOTES, key=len, reverse=True):
        if s.endswith(q) and len(s) > len(q):
            return s[: -len(q)], q
    return s, "quote"


_VALUE = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*(%|[A-Za-z/]+)?\s*$")


class UnitError(ValueError):
    """A value's unit is not the one its limit is counted in."""


def split_value(text: str) -> tuple[str, str]:
    """``"5 BTC"`` -> ("5", "BTC"); ``"0.5%"`` -> ("0.5", "%"); ``"7"`` -> ("7", "")."""
    m = _VALUE.match(str(text))
    if not m:
        raise UnitError(f"{text!r}: expected a number with an optional unit, e.g. '5 BTC', '100 USDT', '0.5%'")
    return m.group(1), (m.group(2) or "")


def percent_to_bps(number: str, unit: str) -> int:
    """``0.5`` ``%`` -> 50; ``50`` ``bps`` -> 50 (basis points, whole numbers)."""
    from decimal import Decimal

    v = Decimal(number) * (100 if unit == "%" else 1)
    if v != v.to_integral_value():
        raise UnitError(f"{number}{unit} is not a whole number of basis points")
    return int(v)
