"""Binance messages <-> livestack: fixed-point decimals, order params, error codes, user-stream
events, exchangeInfo filters and the client order id scheme. Pure functions (no I/O), unit-tested
against the documented example payloads.

Decoding is typed (``msgspec``): a field Binance adds later is ignored, a documented field with the
wrong type or a missing one makes the message *bad*: the adapter counts it (``bad_messages``) and
goes on; it never raises out of the venue process.
"""

from __future__ import annotations

import enum
import zlib

import msgspec

from livestack.schema import ExecType, OrdType, Side, TimeInForce


class Reject(enum.IntEnum):
    """``EXEC.reason`` of the binance venue: ``abs(code)`` of the Binance error code (a code not named
    here is still kept verbatim as ``abs(code)``), or a local reason (9000+)."""

    UNKNOWN = 1000
    DISCONNECTED = 1001
    UNAUTHORIZED = 1002
    TOO_MANY_REQUESTS = 1003          # -1003: request weight over the limit (429 / 418)
    UNEXPECTED_RESP = 1006
    TIMEOUT = 1007
    SERVER_BUSY = 1008
    INVALID_MESSAGE = 1013            # -1013: a symbol filter failed (spot)
    UNKNOWN_ORDER_COMPOSITION = 1014
    TOO_MANY_ORDERS = 1015            # -1015: order rate limit (ORDERS per 10 s / day)
    SERVICE_SHUTTING_DOWN = 1016
    UNSUPPORTED_OPERATION = 1020
    INVALID_TIMESTAMP = 1021          # -1021: timestamp outside recvWindow (resynced, retried once)
    INVALID_SIGNATURE = 1022
    ILLEGAL_CHARS = 1100
    TOO_MANY_PARAMETERS = 1101
    MANDATORY_PARAM_EMPTY_OR_MALFORMED = 1102
    UNKNOWN_PARAM = 1103
    BAD_PRECISION = 1111
    INVALID_TIF = 1115
    INVALID_ORDER_TYPE = 1116
    INVALID_SIDE = 1117
    BAD_SYMBOL = 1121
    INVALID_LISTEN_KEY = 1125
    NEW_ORDER_REJECTED = 2010         # -2010: e.g. insufficient balance, LIMIT_MAKER would take
    CANCEL_REJECTED = 2011            # -2011: unknown order on cancel
    NO_SUCH_ORDER = 2013              # -2013: order does not exist
    BAD_API_KEY_FMT = 2014
    REJECTED_MBX_KEY = 2015
    BALANCE_NOT_SUFFICIENT = 2018
    MARGIN_NOT_SUFFICIENT = 2019
    CANCEL_REPLACE_PARTIALLY_FAILED = 2021  # spot -2021 (USD-M: order would immediately trigger)
    CANCEL_REPLACE_FAILED = 2022      # spot -2022 (USD-M: ReduceOnly order rejected)
    ORDER_ARCHIVED = 2026
    PRICE_NOT_ON_TICK = 4014
    CLIENT_ORDER_ID_INVALID = 4015
    QTY_NOT_ON_STEP = 4023
    DUPLICATE_CLIENT_ORDER_ID = 4116  # USD-M -4116: clientOrderId is duplicated
    USE_ALGO_ORDER_API = 4120         # USD-M -4120: order type needs the Algo Order API
    PERCENT_PRICE_FUTURES = 4131
    MIN_NOTIONAL_FUTURES = 4164
    FOK_ORDER_REJECT = 5021
    GTX_ORDER_REJECT = 5022           # USD-M post-only would take
    NO_NEED_TO_MODIFY = 5027
    # local reasons
    NOT_DELIVERED = 9001              # the status query found no such order: it never reached Binance
    STALE = 9002                      # waited for a connection / the rate limit longer than allowed
    UNKNOWN_INSTRUMENT = 9003
    UNKNOWN_ORDER = 9004              # cancel/replace of an order this venue does not know
    BAD_COMMAND = 9005
    FILTER_PRICE = 9006               # PRICE_FILTER (min/max/tick)
    FILTER_LOT = 9007                 # LOT_SIZE / MARKET_LOT_SIZE
    FILTER_NOTIONAL = 9008            # MIN_NOTIONAL / NOTIONAL
    FILTER_PERCENT_PRICE = 9009       # PERCENT_PRICE / PERCENT_PRICE_BY_SIDE
    BANNED = 9010                     # HTTP 418 / banned until: the venue is HALTED
    BAD_RESPONSE = 9011               # the answer to our request could not be read
    REPLACE_QTY = 9012                # replace to a quantity at or below what already filled


def reason_of(code) -> int:
    """``EXEC.reason`` of a Binance error ``code`` (negative int): ``abs(code)``, kept verbatim for
    codes this module does not name; non-integers are UNEXPECTED_RESP."""
    try:
        c = abs(int(code))
    except (TypeError, ValueError):
        return int(Reject.UNEXPECTED_RESP)
    return min(c, 65535)


def reason_name(reason: int) -> str:
    try:
        return Reject(reason).name
    except ValueError:
        return f"BINANCE_{reason}"


# --- fixed point ----------------------------------------------------------------------------------

def fmt_fixed(v: int, decimals: int) -> str:
    """Exact decimal text of fixed-point ``v`` (``12345, 2 -> "123.45"``)."""
    if decimals == 0:
        return str(v)
    sign = "-" if v < 0 else ""
    q, r = divmod(abs(int(v)), 10 ** decimals)
    return f"{sign}{q}.{r:0{decimals}d}"


def parse_fixed(s, decimals: int) -> int:
    """Exact fixed-point int of decimal text ``s`` at ``decimals``; digits beyond ``decimals`` must be
    zeros (else ValueError: the value is not representable, never rounded)."""
    if not isinstance(s, str):
        if isinstance(s, int) and not isinstance(s, bool):
            return s * 10 ** decimals
        raise ValueError(f"not a decimal string: {s!r}")
    t = s.strip()
    neg = t.startswith("-")
    if neg or t.startswith("+"):
        t = t[1:]
    whole, _, frac = t.partition(".")
    if not (whole or frac) or (whole and not whole.isdigit()) or (frac and not frac.isdigit()):
        raise ValueError(f"not a decimal string: {s!r}")
    if len(frac) > decimals:
        if frac[decimals:].strip("0"):
            raise ValueError(f"{s!r} has more than {decimals} decimals")
        frac = frac[:decimals]
    v = int(whole or "0") * 10 ** decimals + int((frac or "0").ljust(decimals, "0"))
    return -v if neg else v


# --- client order ids ----------------------------------------------------------------------------

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if not n:
            return out


def session_epoch_of(name: str) -> int:
    """A session epoch derived from a ring name (the supervisor's names carry the session id)."""
    return zlib.crc32(name.encode()) & 0xFFFFFF or 1


def client_order_id(epoch: int, cid: int) -> str:
    """Binance ``newClientOrderId`` of our order ``cid``: ``"ls<epoch b36>-<cid>"``.

    Deterministic (the same order gets the same id after any restart of the venue process, so a
    resend cannot create a second live order: Binance refuses a duplicate open clientOrderId) and
    unique across sessions (the epoch). ``cid`` is the core's crash-safe id, ``recovery epoch << 40 |
    n``: a restarted harness continues in a new recovery epoch, so its orders get new ids; a
    restarted venue process maps a command it sends again to the same id. At most 27 characters,
    ``^[.A-Z:/a-z0-9_-]{1,36}$``. :func:`parse_client_order_id` is its inverse."""
    return f"ls{_b36(epoch)}-{cid}"


def parse_client_order_id(s: str, epoch: int) -> int | None:
    """Our ``cid`` from a clientOrderId of this epoch; None for anything else (another session's or
    a manual order)."""
    if not isinstance(s, str):
        return None
    prefix = f"ls{_b36(epoch)}-"
    if not s.startswith(prefix):
        return None
    tail = s[len(prefix):]
    if not tail.isdigit() or len(tail) > 19:
        return None
    v = int(tail)
    return v if v < 2**63 else None


# --- order params ---------------------------------------------------------------------------------

_SIDE = {int(Side.BUY): "BUY", int(Side.SELL): "SELL"}
SIDE_OF = {"BUY": int(Side.BUY), "SELL": int(Side.SELL)}
_FOK = getattr(TimeInForce, "FOK", None)


def new_order_params(market: str, symbol: str, clid: str, side: int, ord_type: int, tif: int, price: int,
                     qty: int, price_dec: int, qty_dec: int, reduce_only: bool = False) -> dict:
    """``order.place`` params (without timestamp/signature). Raises ValueError for a command Binance
    cannot express."""
    if side not in _SIDE:
        raise ValueError("side")
    p = {"symbol": symbol, "side": _SIDE[side], "newClientOrderId": clid,
         "quantity": fmt_fixed(qty, qty_dec)}
    ot = ord_type or int(OrdType.LIMIT)
    tif = tif or int(TimeInForce.GTC)
    if ot == OrdType.MARKET:
        p["type"] = "MARKET"
    elif ot == OrdType.LIMIT:
        p["price"] = fmt_fixed(price, price_dec)
        if tif == TimeInForce.POST_ONLY:
            if market == "spot":
                p["type"] = "LIMIT_MAKER"          # spot post-only: rejected -2010 if it would take
            else:
                p["type"], p["timeInForce"] = "LIMIT", "GTX"
        else:
            p["type"] = "LIMIT"
            if tif == TimeInForce.IOC:
                p["timeInForce"] = "IOC"
            elif _FOK is not None and tif == _FOK:
                p["timeInForce"] = "FOK"
            elif tif in (TimeInForce.GTC, TimeInForce.DAY):
                p["timeInForce"] = "GTC"
            else:
                raise ValueError("tif")
    else:
        raise ValueError("ord_type")
    if market == "usdm":
        p["newOrderRespType"] = "RESULT"
        if reduce_only:
            p["reduceOnly"] = "true"
    else:
        p["newOrderRespType"] = "RESULT"
    return p


# --- user-stream events ---------------------------------------------------------------------------

class SpotReport(msgspec.Struct):
    """Spot ``executionReport`` (fields we use; others ignored)."""
    E: int
    s: str
    c: str
    S: str
    q: str
    p: str
    x: str
    X: str
    i: int
    l: str
    z: str
    L: str
    T: int
    t: int
    C: str = ""
    r: str = "NONE"
    n: str | None = "0"
    N: str | None = None


class FuturesOrder(msgspec.Struct):
    """USD-M ``ORDER_TRADE_UPDATE.o``."""
    s: str
    c: str
    S: str
    q: str
    p: str
    x: str
    X: str
    i: int
    l: str
    z: str
    L: str
    T: int
    t: int
    n: str = "0"
    N: str | None = None
    R: bool = False


class FuturesUpdate(msgspec.Struct):
    E: int
    T: int
    o: FuturesOrder


class Update(msgspec.Struct):
    """One order event, market-neutral."""
    x: str            # execution type: NEW TRADE CANCELED EXPIRED REJECTED AMENDMENT TRADE_PREVENTION ...
    X: str            # order status after it
    clid: str         # clientOrderId the order carries (spot CANCELED: the original one, from C)
    order_id: int
    symbol: str
    side: int
    price: str
    qty: str
    last_px: str
    last_qty: str
    cum_qty: str
    trade_id: int     # -1 when not a trade
    fee: str
    fee_asset: str
    ts_ns: int
    reject: str = ""


_spot_dec = msgspec.json.Decoder(SpotReport)
_fut_dec = msgspec.json.Decoder(FuturesUpdate)


def update_from_spot(ev: SpotReport) -> Update:
    clid = ev.C if ev.x == "CANCELED" and ev.C else ev.c
    return Update(ev.x, ev.X, clid, ev.i, ev.s, SIDE_OF.get(ev.S, 0), ev.p, ev.q, ev.L, ev.l, ev.z, ev.t,
                  ev.n or "0", ev.N or "", ev.T * 1_000_000, ev.r)


def update_from_futures(ev: FuturesUpdate) -> Update:
    o = ev.o
    return Update(o.x, o.X, o.c, o.i, o.s, SIDE_OF.get(o.S, 0), o.p, o.q, o.L, o.l, o.z, o.t,
                  o.n or "0", o.N or "", (o.T or ev.T) * 1_000_000, "")


def exec_type_of(u: Update) -> int | None:
    """The ExecType of an update; None for events that change nothing we report."""
    x = u.x
    if x == "TRADE":
        return int(ExecType.FILLED) if u.X == "FILLED" else int(ExecType.PARTIALLY_FILLED)
    if x == "NEW":
        return int(ExecType.ACCEPTED)
    if x == "CANCELED":
        return int(ExecType.CANCELED)
    if x == "REJECTED":
        return int(ExecType.REJECTED)
    if x in ("EXPIRED", "TRADE_PREVENTION") and u.X in ("EXPIRED", "EXPIRED_IN_MATCH", "CANCELED"):
        return int(ExecType.EXPIRED)
    return None


def positions(answer, by_symbol: dict) -> tuple[dict, dict]:
    """A USD-M ``account.position`` / ``positionRisk`` answer as ({symbol: net position, fixed
    point}, {symbol: updateTime ms}) for the symbols of ``by_symbol`` (instruments); a symbol the
    answer leaves out has position 0 (Binance lists only symbols with a position or open orders).
    Hedge mode: LONG and SHORT entries are summed (SHORT amounts are negative). ValueError on a
    malformed answer."""
    if not isinstance(answer, list):
        raise ValueError(f"positions: expected a list, got {type(answer).__name__}")
    net = {sym: 0 for sym in by_symbol}
    newest = {sym: 0 for sym in by_symbol}
    for p in answer:
        if not isinstance(p, dict) or not isinstance(p.get("symbol"), str):
            raise ValueError(f"positions: malformed entry {p!r:.120}")
        inst = by_symbol.get(p["symbol"])
        if inst is None:
            continue
        amt = p.get("positionAmt")
        t = p.get("updateTime", 0)
        if not isinstance(t, int) or isinstance(t, bool):
            raise ValueError(f"positions: {p['symbol']}: updateTime {t!r}")
        net[p["symbol"]] += parse_fixed(amt, inst.qty_decimals)
        newest[p["symbol"]] = max(newest[p["symbol"]], t)
    return net, newest


def exec_id_text(symbol: str, trade_id: int) -> str:
    """The execution id string of a fill: ``"<symbol>-<tradeId>"`` (Binance trade ids are per symbol)."""
    return f"{symbol}-{trade_id}"


# --- exchangeInfo ---------------------------------------------------------------------------------

class SymbolFilters(msgspec.Struct):
    """The filters of one symbol, fixed point at the instrument's decimals (0 = no bound)."""
    min_price: int = 0
    max_price: int = 0
    tick: int = 0
    min_qty: int = 0
    max_qty: int = 0
    step: int = 0
    min_notional: int = 0     # price units x qty units / 10**qty_dec (quote at price scale)
    max_notional: int = 0
    pct_up: float = 0.0       # PERCENT_PRICE(_BY_SIDE): price <= avg/ref * up
    pct_down: float = 0.0


def _fx(s, dec):
    try:
        return parse_fixed(s, dec)
    except ValueError:
        # a bound finer than our decimals: round toward the permissive side is wrong for a check,
        # so keep it exact by scaling to the nearest unit (Binance bounds are on tick anyway)
        from decimal import Decimal
        return int(Decimal(s).scaleb(dec))


def parse_filters(sym: dict, price_dec: int, qty_dec: int) -> SymbolFilters:
    """``SymbolFilters`` of one ``exchangeInfo.symbols[]`` entry."""
    f = SymbolFilters()
    for flt in sym.get("filters", []):
        t = flt.get("filterType")
        if t == "PRICE_FILTER":
            f.min_price = _fx(flt.get("minPrice", "0"), price_dec)
            f.max_price = _fx(flt.get("maxPrice", "0"), price_dec)
            f.tick = _fx(flt.get("tickSize", "0"), price_dec)
        elif t == "LOT_SIZE":
            f.min_qty = _fx(flt.get("minQty", "0"), qty_dec)
            f.max_qty = _fx(flt.get("maxQty", "0"), qty_dec)
            f.step = _fx(flt.get("stepSize", "0"), qty_dec)
        elif t in ("MIN_NOTIONAL", "NOTIONAL"):
            v = flt.get("minNotional", flt.get("notional", "0"))
            f.min_notional = _fx(v, price_dec)
            if "maxNotional" in flt:
                f.max_notional = _fx(flt["maxNotional"], price_dec)
        elif t == "PERCENT_PRICE":
            f.pct_up, f.pct_down = float(flt.get("multiplierUp", 0)), float(flt.get("multiplierDown", 0))
        elif t == "PERCENT_PRICE_BY_SIDE":
            f.pct_up = float(flt.get("bidMultiplierUp", flt.get("askMultiplierUp", 0)))
            f.pct_down = float(flt.get("askMultiplierDown", flt.get("bidMultiplierDown", 0)))
    return f


def check_filters(f: SymbolFilters, price: int, qty: int, qty_dec: int, is_limit: bool, ref_price: int = 0) -> int:
    """0, or the local reject reason of the first filter ``price``/``qty`` fail."""
    if is_limit:
        if (f.min_price and price < f.min_price) or (f.max_price and price > f.max_price) \
                or (f.tick and (price - f.min_price) % f.tick):
            return int(Reject.FILTER_PRICE)
    if (f.min_qty and qty < f.min_qty) or (f.max_qty and qty > f.max_qty) \
            or (f.step and (qty - f.min_qty) % f.step):
        return int(Reject.FILTER_LOT)
    if is_limit and (f.min_notional or f.max_notional):
        notional = price * qty // 10 ** qty_dec
        if notional < f.min_notional or (f.max_notional and notional > f.max_notional):
            return int(Reject.FILTER_NOTIONAL)
    if is_limit and ref_price > 0 and f.pct_up and f.pct_down:
        if price > ref_price * f.pct_up or price < ref_price * f.pct_down:
            return int(Reject.FILTER_PERCENT_PRICE)
    return 0


def instrument_fields(f: SymbolFilters) -> dict:
    """The Instrument fields an exchangeInfo entry fixes (``tick``, ``lot``), for ``[[instruments]]``."""
    out = {}
    if f.tick:
        out["tick"] = f.tick
    if f.step:
        out["lot"] = f.step
    return out


def config_from_filters(f: SymbolFilters) -> tuple[dict, dict]:
    """What a symbol's exchangeInfo filters mean for the stack's config, so the core's pre-trade risk
    denies what Binance would refuse: ``(instrument fields, [risk.symbols.X] keys)``.

    PRICE_FILTER tickSize -> ``tick``; LOT_SIZE stepSize -> ``lot``, maxQty -> ``max_order_qty``;
    MIN_NOTIONAL / NOTIONAL -> ``min_notional`` (and ``max_notional`` when bounded); PERCENT_PRICE
    multipliers -> ``price_band_bps`` (the tighter side)."""
    inst = instrument_fields(f)
    risk: dict = {}
    if f.max_qty:
        risk["max_order_qty"] = f.max_qty
    if f.min_notional:
        risk["min_notional"] = f.min_notional
    if f.max_notional:
        risk["max_notional"] = f.max_notional
    if f.pct_up > 1 and 0 < f.pct_down < 1:
        risk["price_band_bps"] = int(min(f.pct_up - 1, 1 - f.pct_down) * 10000)
    return inst, risk
