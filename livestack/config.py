"""Configuration objects shared by every process. (TOML loading and validation: ``livestack.node.config``.)"""

from __future__ import annotations

from dataclasses import dataclass


#: default ``Instrument.book_depth``: the levels per side a strategy sees (``[[instruments]] book_depth``)
DEFAULT_BOOK_DEPTH = 32
MAX_BOOK_DEPTH = 100_000


@dataclass(frozen=True)
class Instrument:
    """One tradable instrument.

    Prices are int64 in units of ``10**-price_decimals`` and sizes in units of ``10**-qty_decimals``
    (see ``livestack.schema.parse_fixed``). ``tick`` and ``lot`` are in those units.
    """

    id: int  # 1..2**32-1, the header.instrument of every record about it
    symbol: str  # venue symbol, e.g. "BTCUSDT"
    venue: str = "sim"
    price_decimals: int = 2
    qty_decimals: int = 3
    tick: int = 1
    lot: int = 1
    #: levels per side of the core's (exact, full) book that the strategy context exposes, best
    #: first; the core itself keeps every level whatever this is.
    book_depth: int = DEFAULT_BOOK_DEPTH
    #: the name of the feed whose md ring carries it ([[feeds]]; "default": the single [feed])
    feed: str = ""

    def __post_init__(self):
        if not (0 < self.id < 2**32):
            raise ValueError(f"instrument {self.symbol}: id {self.id} outside 1..2**32-1")
        if not (0 <= self.price_decimals <= 18 and 0 <= self.qty_decimals <= 18):
            raise ValueError(f"instrument {self.symbol}: decimals outside 0..18")
        if self.tick <= 0 or self.lot <= 0:
            raise ValueError(f"instrument {self.symbol}: tick and lot must be positive")
        if not (1 <= self.book_depth <= MAX_BOOK_DEPTH):
            raise ValueError(f"instrument {self.symbol}: book_depth {self.book_depth} outside 1..{MAX_BOOK_DEPTH}")


#: Binance BTCUSDT as the captures in ../shared/data quote it: price tick 0.01 (spot) / 0.10 (USD-M),
#: order quantity step 0.00001 (spot) / 0.001 (USD-M). Spot book levels far from the touch carry
#: quantities with 6 decimals (e.g. 25.426189 BTC at 200000.00), so spot sizes keep 8 decimals
#: (what Binance sends) and orders stay on the 0.00001 lot (lot = 1000 units).
BTCUSDT_SPOT = Instrument(1, "BTCUSDT", "binance", price_decimals=2, qty_decimals=8, tick=1, lot=1000)
BTCUSDT_USDM = Instrument(1, "BTCUSDT", "binance-usdm", price_decimals=2, qty_decimals=3, tick=10, lot=1)
