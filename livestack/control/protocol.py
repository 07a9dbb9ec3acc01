"""The control protocol: JSON requests and replies, the command table, argument validation,
endpoint policy and CURVE keys. Shared by the server, the client and ``livestack ctl``.

Request (one ZeroMQ message, JSON)::

    {"id": "any string or integer", "cmd": "kill", "args": {...}}

Reply::

    {"id": <echoed>, "ok": true,  "cmd": "kill", "hseq": 1234, "result": {...}}
    {"id": <echoed>, "ok": false, "cmd": "kill", "error": "timeout", "message": "harness did not answer ..."}

``hseq`` is the harness input sequence at which the command took effect (``CONTROL_REPLY.hseq``);
for queries answered from the telemetry block it is the harness sequence the block last showed.
Error codes (``error``): ``malformed``, ``unknown_command``, ``bad_arguments``, ``not_allowed``,
``unknown_instrument``, ``timeout``, ``unavailable``, ``internal``.

Commands (``cmd``; ``_`` and ``-`` are interchangeable):

=================  =============================================  ==============================
command            args                                           how
=================  =============================================  ==============================
status             {}                                             STATUS through the harness
session-start      {}                                             SESSION_START
session-stop       {}                                             SESSION_STOP
enable             {}                                             TRADING_ENABLE
disable            {}                                             TRADING_DISABLE
reduce-only        {}                                             REDUCE_ONLY
kill               {}                                             KILL (latched)
kill-reset         {}                                             KILL_RESET
cancel-all         {"instrument"?: id or symbol}                  CANCEL_ALL (absent: every one)
set-limit          {"limit": RiskLimit name, "value": v,          SET_LIMIT
                    "instrument"?: id or symbol}
config             {"set": {key: value, ...},                     one SET_LIMIT / SET_PARAM per key,
                    "instrument"?: id or symbol}                  all with one new config version
orders             {"instrument"?: id or symbol}                  telemetry block
positions          {}                                             telemetry block
metrics            {}                                             telemetry block
=================  =============================================  ==============================

``args`` is absent or an object that fits the command's msgspec Struct below (``NoArgs``,
``InstrumentArgs``, ``SetLimitArgs``, ``ConfigArgs``), decoded strictly: ``[]``, ``0``, ``""``,
``null``, a float or a boolean where an integer or id is expected, an unknown key -> ``bad_arguments``
and nothing is sent to the harness. Who may send requests at all: ``livestack.control.auth``.

Config keys: ``risk.<limit>`` (a RiskLimit name, lower case) and ``strategy.<param>`` /
``strategy.params.<param>`` (a strategy parameter; int64, bools as 0/1) or ``strategy.params.<index>``.
Quantity and price limits accept a decimal string (converted with the instrument's decimals) or
an integer in fixed-point units.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from typing import Annotated, Union

import msgspec
import orjson

from livestack.schema import ControlCmdType, RiskLimit, spec
from livestack.schema.fixedpoint import FixedPointError, parse_fixed

ERRORS = ("malformed", "unknown_command", "bad_arguments", "not_allowed", "unknown_instrument", "timeout",
          "unavailable", "internal")
#: ControlError (CONTROL_REPLY.error) -> protocol error code
HARNESS_ERRORS = {1: "unknown_command", 2: "bad_arguments", 3: "not_allowed", 4: "unknown_instrument"}
MAX_REQUEST_BYTES = 64 * 1024


class RequestError(Exception):
    """A request that is rejected before it reaches the harness (nothing changes)."""

    def __init__(self, code: str, message: str):
        assert code in ERRORS, code
        super().__init__(message)
        self.code = code
        self.message = message


# ---- argument schemas: one msgspec Struct per command shape ------------------------------------
# Decoded strictly (no bool for int, no float for int, no unknown keys): a request whose args do
# not fit is a ``bad_arguments`` reply and nothing is sent to the harness.

#: an instrument id (int), a symbol (str), or absent / null / 0 / "all" for every instrument
InstrumentRef = Union[int, str, None]


class NoArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """No arguments: ``args`` absent or ``{}``."""


class InstrumentArgs(NoArgs, frozen=True):
    instrument: InstrumentRef = None


class SetLimitArgs(NoArgs, frozen=True):
    limit: Union[int, str]  # RiskLimit name or value
    value: Union[int, str]  # fixed-point integer or a decimal string
    instrument: InstrumentRef = None


class ConfigArgs(NoArgs, frozen=True):
    set: Annotated[dict[str, Union[int, str, bool]], msgspec.Meta(min_length=1)]
    instrument: InstrumentRef = None


@dataclass(frozen=True)
class Command:
    name: str
    harness: int | None  # ControlCmdType sent to the harness, None when answered locally
    schema: type  # the msgspec Struct its args must fit
    doc: str

    @property
    def args(self) -> tuple[str, ...]:
        """Allowed argument names."""
        return self.schema.__struct_fields__


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("status", ControlCmdType.STATUS, NoArgs, "trading state, kill latch, session, counters, process health"),
    Command("session-start", ControlCmdType.SESSION_START, NoArgs, "start the session (trading ACTIVE)"),
    Command("session-stop", ControlCmdType.SESSION_STOP, NoArgs, "stop the session: cancel all, HALTED"),
    Command("enable", ControlCmdType.TRADING_ENABLE, NoArgs, "trading ACTIVE (refused while the kill switch is latched)"),
    Command("disable", ControlCmdType.TRADING_DISABLE, NoArgs, "trading HALTED: no new orders"),
    Command("reduce-only", ControlCmdType.REDUCE_ONLY, NoArgs, "trading REDUCING: only position-reducing orders"),
    Command("kill", ControlCmdType.KILL, NoArgs, "kill switch: cancel every open order, HALTED, latched"),
    Command("kill-reset", ControlCmdType.KILL_RESET, NoArgs, "release the kill latch (trading stays HALTED)"),
    Command("cancel-all", ControlCmdType.CANCEL_ALL, InstrumentArgs, "cancel open orders (one instrument or all)"),
    Command("set-limit", ControlCmdType.SET_LIMIT, SetLimitArgs, "set a risk limit"),
    Command("config", ControlCmdType.SET_PARAM, ConfigArgs, "versioned config update (risk limits, strategy params)"),
    Command("orders", None, InstrumentArgs, "open orders (telemetry block)"),
    Command("positions", None, NoArgs, "positions and PnL (telemetry block)"),
    Command("metrics", None, NoArgs, "counters, latency quantiles, rings, processes (telemetry block)"),
)}
ALIASES = {"trading-enable": "enable", "trading-disable": "disable", "cancel": "cancel-all",
           "start": "session-start", "stop": "session-stop", "update-config": "config", "limit": "set-limit"}

#: RiskLimit -> "qty" | "price" | "int": how a decimal-string value is converted
_LIMIT_DOCS = {name: doc for name, _, doc in spec.ENUMS_BY_NAME["RiskLimit"].members}


def limit_unit(limit: RiskLimit) -> str:
    doc = _LIMIT_DOCS.get(limit.name, "")
    if "price units" in doc or "price scale" in doc:
        return "price"
    if "qty units" in doc:
        return "qty"
    return "int"


def canonical(cmd) -> str:
    if not isinstance(cmd, str):
        raise RequestError("malformed", f"'cmd' must be a string, got {type(cmd).__name__}")
    name = cmd.strip().lower().replace("_", "-")
    name = ALIASES.get(name, name)
    if name not in COMMANDS:
        raise RequestError("unknown_command", f"unknown command {cmd!r} (known: {', '.join(COMMANDS)})")
    return name


def decode_request(raw: bytes) -> tuple[object, str, dict]:
    """(id, canonical command, args) of a request; RequestError (with the id when known) otherwise."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise RequestError("malformed", f"request of {len(raw)} bytes exceeds {MAX_REQUEST_BYTES}")
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise RequestError("malformed", f"request is not valid JSON: {e}") from None
    if not isinstance(msg, dict):
        raise RequestError("malformed", f"request must be a JSON object, got {type(msg).__name__}")
    rid = msg.get("id")
    try:
        if rid is None:
            raise RequestError("malformed", "request has no 'id'")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool):
            raise RequestError("malformed", "'id' must be a string or an integer")
        unknown = set(msg) - {"id", "cmd", "args"}
        if unknown:
            raise RequestError("malformed", f"unknown request fields: {', '.join(sorted(unknown))}")
        if "cmd" not in msg:
            raise RequestError("malformed", "request has no 'cmd'")
        name = canonical(msg["cmd"])
        args = decode_args(name, msg["args"]) if "args" in msg else {}
    except RequestError as e:
        e.id = rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None
        raise
    return rid, name, args


def decode_args(name: str, raw) -> dict:
    """``raw`` (the request's ``args``) checked against the command's schema; the given arguments
    as a dict (null ones dropped). RequestError ``bad_arguments`` when they do not fit."""
    schema = COMMANDS[name].schema
    allowed = ", ".join(schema.__struct_fields__) or "none"
    if not isinstance(raw, dict):
        raise RequestError("bad_arguments", f"{name}: 'args' must be an object ({{}} or absent for none), "
                           f"got {type(raw).__name__} {orjson.dumps(raw).decode()[:40]}")
    try:
        obj = msgspec.convert(raw, schema, strict=True)
    except msgspec.ValidationError as e:
        raise RequestError("bad_arguments", f"{name}: {e} (arguments: {allowed})") from None
    return {k: v for k, v in msgspec.structs.asdict(obj).items() if v is not None}


def encode(obj) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def ok_reply(rid, cmd: str, hseq, result: dict) -> dict:
    return {"id": rid, "ok": True, "cmd": cmd, "hseq": hseq, "result": result}


def error_reply(rid, cmd: str | None, code: str, message: str, **extra) -> dict:
    out = {"id": rid, "ok": False, "cmd": cmd, "error": code, "message": message}
    out.update(extra)
    return out


# ---- instruments and values ----------------------------------------------------------------

@dataclass(frozen=True)
class InstrumentInfo:
    id: int
    symbol: str
    price_decimals: int
    qty_decimals: int


class Instruments:
    """Instrument lookup by id or symbol (from the config, else the telemetry block's registrations)."""

    def __init__(self, items: list[InstrumentInfo] | None = None):
        self.by_id = {i.id: i for i in items or ()}
        self.by_symbol = {i.symbol.upper(): i for i in items or ()}

    @classmethod
    def from_config(cls, instruments) -> "Instruments":
        items = []
        for it in instruments or ():
            get = it.get if isinstance(it, dict) else lambda k, d=None, it=it: getattr(it, k, d)
            items.append(InstrumentInfo(int(get("id")), str(get("symbol")), int(get("price_decimals", 2)),
                                        int(get("qty_decimals", 3))))
        return cls(items)

    @classmethod
    def from_positions(cls, positions: list[dict]) -> "Instruments":
        return cls([InstrumentInfo(p["instrument"], p["symbol"], p["price_decimals"], p["qty_decimals"])
                    for p in positions])

    def __bool__(self):
        return bool(self.by_id)

    def resolve(self, value) -> InstrumentInfo | None:
        """None for 'every instrument' (absent, 0, "all", "*"); RequestError when unknown."""
        if value is None or value == 0 or (isinstance(value, str) and value.strip().lower() in ("", "all", "*", "0")):
            return None
        if isinstance(value, bool):
            raise RequestError("bad_arguments", "instrument must be an id or a symbol, not a boolean")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, int):
            if not 0 < value < 2**32:
                raise RequestError("bad_arguments", f"instrument id {value} outside 1..2**32-1")
            if self.by_id and value not in self.by_id:
                raise RequestError("unknown_instrument", f"unknown instrument {value} (known: {self._known()})")
            return self.by_id.get(value) or InstrumentInfo(value, str(value), -1, -1)
        if isinstance(value, str):
            info = self.by_symbol.get(value.strip().upper())
            if info is None:
                raise RequestError("unknown_instrument", f"unknown instrument {value!r} (known: {self._known() or 'none registered'})")
            return info
        raise RequestError("bad_arguments", f"instrument must be an id or a symbol, got {type(value).__name__}")

    def _known(self) -> str:
        return ", ".join(f"{i.symbol}={i.id}" for i in self.by_id.values())


def parse_limit(name) -> RiskLimit:
    if isinstance(name, int) and not isinstance(name, bool):
        try:
            return RiskLimit(name)
        except ValueError:
            pass
    elif isinstance(name, str):
        key = name.strip().upper().replace("-", "_")
        if key in RiskLimit.__members__:
            return RiskLimit[key]
    known = ", ".join(m.name.lower() for m in RiskLimit)
    raise RequestError("bad_arguments", f"unknown risk limit {name!r} (known: {known})")


_COUNT_UNITS = {"PRICE_BAND_TICKS": ("ticks",), "PRICE_BAND_BPS": ("bps",), "SUBMIT_RATE": ("/s", "orders/s"),
                "CANCEL_RATE": ("/s", "cancels/s"), "MAX_OPEN_ORDERS": ("orders",), "MAX_IN_FLIGHT": ("orders",),
                "SUBMIT_BURST": ("orders",), "CANCEL_BURST": ("cancels",), "TRADABLE": ()}


def limit_unit_text(limit: RiskLimit, inst: InstrumentInfo | None) -> str:
    """The unit a limit is counted in, as an operator reads it: the instrument's base currency for
    sizes, its quote currency for notionals and losses, else the count's unit."""
    from livestack.units import currencies

    kind = limit_unit(limit)
    if kind in ("qty", "price"):
        if inst is None or inst.price_decimals < 0:
            return "base currency" if kind == "qty" else "quote currency"
        base, quote = currencies(inst.symbol)
        return base if kind == "qty" else quote
    units = _COUNT_UNITS.get(limit.name, ())
    return "0/1" if limit == RiskLimit.TRADABLE else (units[-1] if units else "count")


def _strip_unit(limit: RiskLimit, text: str, inst: InstrumentInfo | None) -> str:
    """``"5 BTC"`` -> ``"5"`` when BTC is the limit's unit; ``"0.5%"`` -> ``"50"`` for the bps band;
    RequestError naming the right unit otherwise."""
    from livestack.units import UnitError, percent_to_bps, split_value

    what = f"limit {limit.name.lower()}"
    try:
        number, unit = split_value(text)
    except UnitError as e:
        raise RequestError("bad_arguments", f"{what}: {e}") from None
    if not unit:
        return number
    want = limit_unit_text(limit, inst)
    if unit in ("%", "bps") or unit.lower() == "bps":
        if limit != RiskLimit.PRICE_BAND_BPS:
            raise RequestError("bad_arguments", f"{what} is counted in {want}, not in {unit} "
                               "(percentages: price_band_bps)")
        try:
            return str(percent_to_bps(number, "%" if unit == "%" else "bps"))
        except UnitError as e:
            raise RequestError("bad_arguments", f"{what}: {e}") from None
    if limit_unit(limit) in ("qty", "price"):
        if inst is None or inst.price_decimals < 0:
            raise RequestError("bad_arguments", f"{what}: a value in {unit} needs a known instrument "
                               "(pass 'instrument')")
        if unit.upper() != want.upper():
            raise RequestError("bad_arguments", f"{what} is counted in {want} for {inst.symbol} "
                               f"({'its base currency' if limit_unit(limit) == 'qty' else 'its quote currency'}), not {unit}")
        return number
    if unit.lower() not in _COUNT_UNITS.get(limit.name, ()):
        raise RequestError("bad_arguments", f"{what} is counted in {want}, not {unit}")
    return number


def limit_value(limit: RiskLimit, value, inst: InstrumentInfo | None) -> int:
    """A limit value as the int64 the harness expects (fixed point for qty/price limits).

    An int is taken as is (fixed-point units); a string is a decimal in the limit's unit, with an
    optional unit that must be that one (``"5 BTC"``, ``"100 USDT"``, ``"0.5%"`` / ``"50 bps"``
    for price_band_bps, ``"200/s"`` for rates): see :func:`limit_unit_text`."""
    what = f"limit {limit.name.lower()}"
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float):
        raise RequestError("bad_arguments", f"{what}: give an integer (fixed-point units) or a decimal string, not a float")
    if isinstance(value, str):
        s = _strip_unit(limit, value.strip(), inst)
        if re.fullmatch(r"-?\d+", s) and limit_unit(limit) == "int":
            value = int(s)
        else:
            unit = limit_unit(limit)
            if unit == "int":
                raise RequestError("bad_arguments", f"{what}: expects an integer, got {value!r}")
            if inst is None or inst.price_decimals < 0:
                raise RequestError("bad_arguments", f"{what}: a decimal value needs a known instrument "
                                   "(pass 'instrument', or an integer in fixed-point units)")
            decimals = inst.qty_decimals if unit == "qty" else inst.price_decimals
            try:
                value = parse_fixed(s, decimals)
            except FixedPointError as e:
                raise RequestError("bad_arguments", f"{what}: {e}") from None
    if not isinstance(value, int):
        raise RequestError("bad_arguments", f"{what}: value must be an integer or a decimal string, got {type(value).__name__}")
    if value < 0:
        raise RequestError("bad_arguments", f"{what}: value must be >= 0, got {value}")
    if value >= 2**63:
        raise RequestError("bad_arguments", f"{what}: value {value} does not fit int64")
    if limit == RiskLimit.TRADABLE and value not in (0, 1):
        raise RequestError("bad_arguments", f"{what}: 0 or 1, got {value}")
    return value


def param_value(name: str, value) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise RequestError("bad_arguments", f"strategy parameter {name}: int64 value expected, got {type(value).__name__} {value!r}")
    if not -(2**63) <= value < 2**63:
        raise RequestError("bad_arguments", f"strategy parameter {name}: {value} does not fit int64")
    return value


@dataclass(frozen=True)
class Update:
    """One validated config change: what to send to the harness."""
    key: str
    cmd: int  # SET_LIMIT or SET_PARAM
    instrument: int
    arg0: int
    arg1: int


def plan_config(settings, instrument_arg, instruments: Instruments, params: tuple[str, ...] | None) -> list[Update]:
    """Validate a config update (every key, before anything is sent); the harness commands to send.

    ``params``: the strategy's parameter names in index order (None when unknown: only
    ``strategy.params.<index>`` is accepted).
    """
    if not isinstance(settings, dict) or not settings:
        raise RequestError("bad_arguments", "config: 'set' must be a non-empty object of key: value")
    inst = instruments.resolve(instrument_arg)
    out = []
    for key, value in settings.items():
        if not isinstance(key, str):
            raise RequestError("bad_arguments", f"config: key {key!r} is not a string")
        parts = key.strip().split(".")
        if len(parts) == 2 and parts[0] == "risk":
            limit = parse_limit(parts[1])
            out.append(Update(key, ControlCmdType.SET_LIMIT, inst.id if inst else 0, int(limit),
                              limit_value(limit, value, inst)))
        elif parts[0] == "strategy" and len(parts) in (2, 3) and (len(parts) == 2 or parts[1] == "params"):
            pname = parts[-1]
            if pname.isdigit():
                index = int(pname)
                if params is not None and index >= len(params):
                    raise RequestError("bad_arguments", f"config: strategy parameter index {index} out of range "
                                       f"(the strategy has {len(params)})")
            elif params is None:
                raise RequestError("bad_arguments", f"config: unknown key {key!r}: the strategy's parameter names are "
                                   "not known to the control process; use strategy.params.<index>")
            elif pname not in params:
                raise RequestError("bad_arguments", f"config: unknown strategy parameter {pname!r} "
                                   f"(known: {', '.join(params) or 'none'})")
            else:
                index = params.index(pname)
            out.append(Update(key, ControlCmdType.SET_PARAM, 0, index, param_value(pname, value)))
        else:
            known = ["risk.<limit>", "strategy.<param>"]
            raise RequestError("bad_arguments", f"config: unknown key {key!r} (updatable: {', '.join(known)})")
    return out


# ---- endpoints and CURVE (livestack.control.auth; kept here for the callers of the protocol) ----

from livestack.control.auth import check_endpoint, is_local_endpoint  # noqa: E402,F401


def check_bind(endpoint: str, curve: bool) -> None:
    """ValueError unless ``endpoint`` can be served safely: tcp (loopback included) needs CURVE."""
    check_endpoint(endpoint, curve)


def load_keypair(path) -> tuple[bytes, bytes | None]:
    """(public, secret) from a zmq certificate file (secret is None for a public certificate)."""
    import zmq.auth

    return zmq.auth.load_certificate(os.fspath(path))


def key_bytes(value) -> bytes:
    """A Z85 key given as text, bytes or a certificate file path -> 40-byte Z85 bytes."""
    if isinstance(value, bytes):
        value = value.decode()
    value = str(value).strip()
    if len(value) == 40 and not os.path.exists(value):
        return value.encode()
    if os.path.exists(value):
        pub, sec = load_keypair(value)
        return sec or pub
    raise ValueError(f"CURVE key {value[:8]}…: expected a 40-character Z85 key or a certificate file")
