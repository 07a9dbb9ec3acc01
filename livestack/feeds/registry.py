"""Feed kinds beyond ``sim`` and ``binance``: ``kind -> (entry point, options validator)``.

Each entry point has the feed contract ``run_process(ring_name, instruments, options, stop)``; each
validator takes ``feed.options`` and raises ValueError with a message naming the bad option (the
options are a ``msgspec.Struct`` in the feed's module: the config contract of that feed).
"""

from __future__ import annotations

import importlib

#: kind -> ("module:function" entry point, "module:function" validator)
FEED_KINDS = {
    "okx": ("livestack.feeds.venue_ws:run_okx", "livestack.feeds.venue_ws:validate_okx"),
    "kraken": ("livestack.feeds.venue_ws:run_kraken", "livestack.feeds.venue_ws:validate_kraken"),
    "dbn": ("livestack.feeds.dbn:run_process", "livestack.feeds.dbn:validate_options"),
}


def _load(ref: str):
    mod, fn = ref.split(":")
    return getattr(importlib.import_module(mod), fn)


def entry_point(kind: str):
    return _load(FEED_KINDS[kind][0])


def validate(kind: str, options: dict) -> None:
    """Raise ValueError when ``options`` do not fit the feed kind's options Struct."""
    _load(FEED_KINDS[kind][1])(options)
