"""Binance symbol filters into the session's config, so the core's pre-trade risk denies what Binance
would refuse with -1013 (``Filter failure: ...``) before the order leaves.

::

    livestack run ──▶ Supervisor ──▶ load_filters_into_config(cfg)
                                       GET exchangeInfo (public, once, at session start)
                                       PRICE_FILTER  tickSize -> [[instruments]].tick   minPrice / maxPrice -> min_price / max_price
                                       LOT_SIZE      stepSize -> [[instruments]].lot    minQty / maxQty     -> min_order_qty / max_order_qty
                                       MIN_NOTIONAL / NOTIONAL  minNotional / maxNotional -> min_notional / max_notional
                                       PERCENT_PRICE(_BY_SIDE)  multipliers -> price_band_bps (the tighter side)
                                     ──▶ the config every process gets, and the session file keeps

The merged config is what the harness builds its core from and what the session file stores, so a
replay denies exactly what the live session denied (the core never asks Binance anything). Values
the config gives explicitly stay where they are stricter: a tick/lot becomes the least common
multiple of the configured one and Binance's, a minimum the larger, a maximum the smaller. Option
``load_filters = false`` (``[venue.options]``) skips the request: the config's values are then the
only ones (give them explicitly: ``tick``, ``lot``, ``[risk.symbols.X]``).

MARKET_LOT_SIZE is not loaded (the core sends limit orders only); the venue still checks every
filter before sending (``check_filters``).
"""

from __future__ import annotations

import copy
import json
import math
import urllib.request

from livestack.venues.binance import codec

#: risk key -> (SymbolFilters field, True when the larger value is the stricter)
_RISK_FROM_FILTERS = {
    "min_price": ("min_price", True),
    "max_price": ("max_price", False),
    "min_order_qty": ("min_qty", True),
    "max_order_qty": ("max_qty", False),
    "min_notional": ("min_notional", True),
    "max_notional": ("max_notional", False),
}


def fetch_exchange_info(options: dict, timeout_s: float = 10.0) -> dict:
    """GET exchangeInfo from the venue's REST endpoint (public, unsigned)."""
    from livestack.venues.binance.adapter import _PATHS
    from livestack.venues.binance.config import load_options

    opt = load_options(options)
    url = opt.url("rest") + _PATHS[opt.market]["info"]
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:   # noqa: S310 - the configured endpoint
            return json.loads(r.read())
    except (OSError, ValueError) as e:
        raise ValueError(f"venue.options (binance): exchangeInfo from {url} failed ({e}); set "
                         "load_filters = false and give tick, lot and [risk.symbols] explicitly") from None


def load_filters_into_config(cfg: dict, fetch=fetch_exchange_info) -> dict:
    """``cfg`` with the Binance venue's symbol filters merged in (a new dict; ``cfg`` unchanged).
    Any other venue kind, or ``load_filters = false``: ``cfg`` itself. Raises ValueError naming the
    problem (exchangeInfo unreachable, a symbol Binance does not list)."""
    venue = cfg.get("venue") or {}
    opts = venue.get("options") or {}
    if venue.get("kind") != "binance" or not opts.get("load_filters", True):
        return cfg
    return merge_filters(cfg, fetch(opts))


def merge_filters(cfg: dict, info: dict) -> dict:
    """``cfg`` with the filters of exchangeInfo document ``info`` merged into its instruments and
    ``[risk.symbols]`` (the rules in the module docstring)."""
    from livestack.config import Instrument
    from livestack.core.risk_config import RISK_KEYS, _risk_value

    out = copy.deepcopy(cfg)
    listed = {s.get("symbol"): s for s in (info.get("symbols") or []) if isinstance(s, dict)}
    risk = out.setdefault("risk", {})
    per = risk.setdefault("symbols", {})
    for row in out["instruments"]:
        sym = row["symbol"]
        if sym not in listed:
            raise ValueError(f"venue.options (binance): symbol {sym!r} is not in Binance's exchangeInfo")
        inst = Instrument(**row)
        f = codec.parse_filters(listed[sym], inst.price_decimals, inst.qty_decimals)
        if f.tick:
            row["tick"] = math.lcm(inst.tick, f.tick)
        if f.step:
            row["lot"] = math.lcm(inst.lot, f.step)
        own = per.setdefault(sym, {})
        loaded = {key: (getattr(f, field), larger) for key, (field, larger) in _RISK_FROM_FILTERS.items()}
        loaded["price_band_bps"] = (codec.config_from_filters(f)[1].get("price_band_bps", 0), False)
        for key, (venue_value, larger) in loaded.items():
            if not venue_value:
                continue
            given = own.get(key, risk.get(key))
            mine = 0 if given is None else _risk_value(key, given, RISK_KEYS[key][1], inst)
            if mine == 0:   # not given, or 0 = off: the venue's bound applies
                own[key] = venue_value
            else:
                own[key] = max(mine, venue_value) if larger else min(mine, venue_value)
        if not own:
            del per[sym]
    return out
