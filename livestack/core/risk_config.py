"""Risk configuration of the Core Runtime: the limit keys, their units and validation.

Plain Python, run once when a Core is built (and by ``livestack.node.config`` to validate a config
before anything starts); the checks themselves run in the core on every intent. A limit is stored
per instrument by its ``RiskLimit`` value (``livestack/schema/spec.py``), so the core, the control
surface's ``SET_LIMIT`` and the records all name it the same way.
"""

from __future__ import annotations

from livestack.schema import RiskLimit, parse_fixed


#: per-instrument limit keys: (RiskLimit value, unit). Values are ints in raw fixed-point units or
#: decimal strings in the instrument's units ("0.5" BTC, "100000.00" USDT). 0 = check off where noted.
RISK_KEYS = {
    "max_order_qty": (int(RiskLimit.MAX_ORDER_QTY), "qty"),        # required
    "max_notional": (int(RiskLimit.MAX_NOTIONAL), "price"),        # price units (price*qty/qty_scale); 0 = off
    "max_position": (int(RiskLimit.MAX_POSITION), "qty"),          # required; |position + open orders' worst case|
    "max_open_orders": (int(RiskLimit.MAX_OPEN_ORDERS), "count"),  # default: live_cap
    "price_band_ticks": (int(RiskLimit.PRICE_BAND_TICKS), "count"),  # 0 = off
    "price_band_bps": (int(RiskLimit.PRICE_BAND_BPS), "count"),    # 0 = off
    "submit_rate": (int(RiskLimit.SUBMIT_RATE), "count"),          # NEW+REPLACE per second; 0 = off
    "submit_burst": (int(RiskLimit.SUBMIT_BURST), "count"),        # bucket size; default = max(1, submit_rate)
    "cancel_rate": (int(RiskLimit.CANCEL_RATE), "count"),          # strategy cancels per second; 0 = off
    "cancel_burst": (int(RiskLimit.CANCEL_BURST), "count"),
    "tradable": (int(RiskLimit.TRADABLE), "bool"),                 # default true
    "max_in_flight": (int(RiskLimit.MAX_IN_FLIGHT), "count"),      # orders awaiting a venue answer; 0 = off
    "min_notional": (int(RiskLimit.MIN_NOTIONAL), "price"),        # price units; 0 = off (Binance MIN_NOTIONAL)
    "min_order_qty": (int(RiskLimit.MIN_ORDER_QTY), "qty"),        # 0 = off (Binance LOT_SIZE minQty)
    "min_price": (int(RiskLimit.MIN_PRICE), "price"),              # 0 = off (Binance PRICE_FILTER minPrice)
    "max_price": (int(RiskLimit.MAX_PRICE), "price"),              # 0 = off (Binance PRICE_FILTER maxPrice)
}
#: account-wide keys (top level only): price units x qty units (the PnL scale); 0 = off.
GLOBAL_RISK_KEYS = {"max_loss": int(RiskLimit.MAX_LOSS), "max_loss_halt": int(RiskLimit.MAX_LOSS_HALT)}
REQUIRED_RISK_KEYS = ("max_order_qty", "max_position")


def _risk_value(key, value, unit, inst):
    if isinstance(value, bool):
        if unit == "bool":
            return int(value)
        raise ValueError(f"risk key {key!r}: expected a number, got {value!r}")
    if isinstance(value, str):
        if unit == "qty":
            return parse_fixed(value, inst.qty_decimals)
        if unit == "price":
            return parse_fixed(value, inst.price_decimals)
        raise ValueError(f"risk key {key!r}: expected an integer, got {value!r}")
    if not isinstance(value, int):
        raise ValueError(f"risk key {key!r}: expected an integer or a decimal string, got {value!r}")
    if value < 0:
        raise ValueError(f"risk key {key!r}: must not be negative, got {value}")
    if unit == "bool" and value not in (0, 1):
        raise ValueError(f"risk key {key!r}: expected true/false, got {value!r}")
    return int(value)


def parse_risk(risk, instruments, live_cap):
    """Validate a risk dict; return (per-instrument {RiskLimit: value} list, max_loss, max_loss_halt).

    ``risk`` = global defaults (keys of ``RISK_KEYS`` and ``GLOBAL_RISK_KEYS``) plus an optional
    ``"symbols": {SYMBOL: {per-instrument overrides}}``. Raises ``ValueError`` naming the key.
    """
    if not isinstance(risk, dict):
        raise ValueError("risk must be a dict")
    symbols = risk.get("symbols", {})
    if not isinstance(symbols, dict):
        raise ValueError("risk key 'symbols': expected a table of SYMBOL -> limits")
    for k in risk:
        if k != "symbols" and k not in RISK_KEYS and k not in GLOBAL_RISK_KEYS:
            raise ValueError(f"unknown risk key {k!r} (known: {sorted(RISK_KEYS) + sorted(GLOBAL_RISK_KEYS)})")
    known_symbols = {i.symbol for i in instruments}
    for sym, over in symbols.items():
        if sym not in known_symbols:
            raise ValueError(f"risk key 'symbols.{sym}': no such instrument")
        if not isinstance(over, dict):
            raise ValueError(f"risk key 'symbols.{sym}': expected a table")
        for k in over:
            if k not in RISK_KEYS:
                raise ValueError(f"unknown risk key 'symbols.{sym}.{k}'")
    out = []
    for inst in instruments:
        merged = {k: v for k, v in risk.items() if k in RISK_KEYS}
        merged.update(symbols.get(inst.symbol, {}))
        for k in REQUIRED_RISK_KEYS:
            if k not in merged:
                raise ValueError(f"risk key {k!r} missing for {inst.symbol} (required)")
        lim = {}
        for k, (idx, unit) in RISK_KEYS.items():
            if k in merged:
                lim[idx] = _risk_value(k, merged[k], unit, inst)
        lim.setdefault(int(RiskLimit.MAX_OPEN_ORDERS), live_cap)
        lim.setdefault(int(RiskLimit.TRADABLE), 1)
        if lim.get(int(RiskLimit.MAX_PRICE), 0) and lim.get(int(RiskLimit.MIN_PRICE), 0) > lim[int(RiskLimit.MAX_PRICE)]:
            raise ValueError(f"risk keys 'min_price' / 'max_price' for {inst.symbol}: min above max")
        if lim[int(RiskLimit.MAX_OPEN_ORDERS)] > live_cap:
            raise ValueError(f"risk key 'max_open_orders' for {inst.symbol}: {lim[int(RiskLimit.MAX_OPEN_ORDERS)]} "
                             f"above the core's live_cap {live_cap}")
        for rate, burst in ((int(RiskLimit.SUBMIT_RATE), int(RiskLimit.SUBMIT_BURST)),
                            (int(RiskLimit.CANCEL_RATE), int(RiskLimit.CANCEL_BURST))):
            if lim.get(burst, 0) == 0:
                lim[burst] = max(1, lim.get(rate, 0))
        out.append(lim)
    inst0 = instruments[0]
    max_loss = _risk_value("max_loss", risk.get("max_loss", 0), "count", inst0)
    halt = _risk_value("max_loss_halt", risk.get("max_loss_halt", 0), "count", inst0)
    if halt == 0:
        halt = 2 * max_loss
    if max_loss and halt < max_loss:
        raise ValueError("risk key 'max_loss_halt': must be >= max_loss")
    return out, max_loss, halt
