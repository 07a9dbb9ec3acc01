"""The typed schema of the ``livestack run`` config, and a validator that reports every problem.

Why msgspec and not pydantic: msgspec is already a dependency (the control protocol uses it), so
the schema adds none (pydantic would add pydantic + pydantic-core, and its import to every
``livestack`` command); its Structs are plain typed classes with ``Meta`` range constraints and
strict conversion (no silent "64" -> 64) -- all the schema needs. What msgspec does
not do -- collect *every* problem instead of stopping at the first, and say "did you mean" for
an unknown key -- is the small walker :func:`convert` below, which validates field by field
with ``msgspec.convert`` (strict types: ``"64"`` is not an int, ``true`` is not an int; an
int widens to a float) and runs each Struct's ``check()`` for cross-field rules.

Kinds: a feed's or venue's ``options`` table is declared by the kind's own module and
registered here by kind name (``FEED_KINDS`` / ``VENUE_KINDS``: ``"module:Struct"`` strings,
imported only when that kind is configured, or :func:`register_feed` / :func:`register_venue`
at run time). To add a kind: declare ``class MyOptions(msgspec.Struct, forbid_unknown_fields=True)``
in your module and add one line to the table.
"""

from __future__ import annotations

import difflib
import importlib
import typing
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from livestack.harness.recovery import RecoveryConfig

# -- constrained scalar types ------------------------------------------------------------------
Port = Annotated[int, Meta(ge=0, le=65535)]         # 0: off
TcpPort = Annotated[int, Meta(ge=1, le=65535)]
Cpu = Annotated[int, Meta(ge=-1)]                   # -1: any CPU but the harness's
PosFloat = Annotated[float, Meta(gt=0)]
NonNegFloat = Annotated[float, Meta(ge=0)]
PosInt = Annotated[int, Meta(ge=1)]
NonNegInt = Annotated[int, Meta(ge=0)]
Pow2 = Annotated[int, Meta(ge=2, le=1 << 40)]       # power of two: checked in Rings.check
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "debug", "info", "warning", "error", "critical"]
Scalar = str | int | float | bool


class Table(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every config table: unknown keys are errors."""

    def check(self) -> list[tuple[str, str]]:
        """Cross-field problems as (key, message) pairs; the walker prefixes the table's path."""
        return []


class Session(Table):
    name: str = "default"              # records file <name>-<session id>.h5 ("default": <session id>.h5)
    records_dir: str = "records"       # HDF5 session files go to <records_dir>/<date>/<session>.h5
    duration_s: NonNegFloat = 0.0      # 0: run until Ctrl-C / SIGTERM
    status_interval_s: NonNegFloat = 1.0  # one-line status print period (0: quiet)

    def check(self):
        import re

        import os

        out = []
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", self.name):
            out.append(("name", f"= {self.name!r}: 1-64 letters, digits, '_', '.', '-' (it goes into the records file name)"))
        rd = os.path.expanduser(self.records_dir)
        if os.path.exists(rd) and not os.path.isdir(rd):
            out.append(("records_dir", f"= {self.records_dir!r}: exists and is not a directory"))
        return out


class CpuTable(Table):
    """CPU of each process (-1: the harness gets the last CPU; the others any CPU but the harness's)."""

    harness: Cpu = -1
    feed: Cpu = -1
    venue: Cpu = -1
    writer: Cpu = -1
    control: Cpu = -1
    monitor: Cpu = -1

    def check(self):
        import os

        ncpu = os.cpu_count() or 1
        return [(k, f"= {v}: this machine has CPUs 0..{ncpu - 1} (-1: any)")
                for k in self.__struct_fields__ if (v := getattr(self, k)) != -1 and not 0 <= v < ncpu]


class Harness(Table):
    timer_interval_ms: PosFloat = 100.0  # idle timer tick (journaled input)
    sched_fifo: bool = False             # try SCHED_FIFO (warns when not permitted)
    mlockall: bool = False               # try mlockall (warns when not permitted)
    batch: PosInt = 64                   # max records taken from one ring before polling the next
    drain_timeout_s: NonNegFloat = 2.0   # at stop: wait this long for venue answers to cancels
    cancel_on_stop: bool = True
    book_top_levels: NonNegInt = 5       # N of the session file's book_top rows; 0 = none


class Rings(Table):
    md_capacity: Pow2 = 1 << 16
    orders_capacity: Pow2 = 1 << 12
    exec_capacity: Pow2 = 1 << 12
    cmd_capacity: Pow2 = 1 << 8
    reply_capacity: Pow2 = 1 << 8
    events_capacity: Pow2 = 1 << 14
    records_capacity: Pow2 = 1 << 21     # 256 MiB of 128-byte slots: minutes of journal at peak rate

    def check(self):
        return [(k, f"must be a power of two >= 2, got {v}")
                for k in self.__struct_fields__ if (v := getattr(self, k)) & (v - 1)]


class InstrumentTable(Table):
    """One ``[[instruments]]`` entry (``livestack.config.Instrument``)."""

    id: Annotated[int, Meta(ge=1, le=2**32 - 1)]
    symbol: Annotated[str, Meta(min_length=1)]
    #: with [[venues]]: the name of the venue its orders go to; with the single [venue]: a free label
    #: (binance feeds read "binance-usdm" as market usdm)
    venue: str = "sim"
    price_decimals: Annotated[int, Meta(ge=0, le=18)] = 2
    qty_decimals: Annotated[int, Meta(ge=0, le=18)] = 3
    tick: PosInt = 1
    lot: PosInt = 1
    book_depth: Annotated[int, Meta(ge=1, le=100_000)] = 32
    #: with [[feeds]]: the name of the feed its market data comes from ("": the only feed)
    feed: str = ""


class Feed(Table):
    kind: str = "sim"                    # see FEED_KINDS
    options: dict[str, Any] = {}         # validated by the kind's options Struct


class Venue(Table):
    kind: str = "sim"                    # see VENUE_KINDS
    options: dict[str, Any] = {}


#: the name of the one feed / venue of the shorthand ``[feed]`` / ``[venue]`` tables
DEFAULT_NAME = "default"
NAME_RE = r"[A-Za-z0-9][A-Za-z0-9_-]{0,30}"


def _name_problem(name: str) -> list[tuple[str, str]]:
    import re

    if re.fullmatch(NAME_RE, name):
        return []
    return [("name", f"= {name!r}: 1-31 letters, digits, '_', '-' (it names shared-memory rings and metric labels)")]


class NamedFeed(Feed, kw_only=True):
    """One ``[[feeds]]`` entry: a feed process with its own md ring."""

    name: str

    def check(self):
        return _name_problem(self.name)


class NamedVenue(Venue, kw_only=True):
    """One ``[[venues]]`` entry: a venue process with its own orders/exec ring pair."""

    name: str

    def check(self):
        return _name_problem(self.name)


class Strategy(Table):
    name: str = "mm_cy"                  # registry name, package.module:Class or path/file.py|.pyx:Class
    params: dict[str, Scalar | list[Scalar]] = {}
    on_error: Literal["disable", "halt", "continue"] = "disable"  # livestack.strategies.config


class Writer(Table):
    enabled: bool = True
    flush_interval_ms: PosFloat = 100.0
    fsync_interval_ms: NonNegFloat = 1000.0  # fsync the session file at most this often (0 = never)
    min_free_mb: NonNegFloat = 256.0         # records disk: needed at start (livestack/records/diskspace.py)
    #: [writer.nats]: publish flushed batches to NATS JetStream (livestack.records.jetstream.NatsOptions)
    nats: dict[str, Any] = {}

    def check(self):
        if not self.nats:
            return []
        from livestack.records import jetstream

        try:
            jetstream.options(self.nats)
        except ValueError as e:
            return [("nats", f": {str(e).removeprefix('config writer.nats: ')}")]
        return []


class Control(Table):
    enabled: bool = True
    endpoint: str = ""                   # default ipc://<session dir>/control.sock (0600); tcp:// needs CURVE
    pub_endpoint: str = ""
    curve_secret_key: str = ""           # path: the server's secret certificate (`livestack ctl keygen`, 0600)
    curve_authorized_keys: str | list[str] = []  # paths: client public certificates (files or directories)
    reply_spin_us: NonNegFloat = 50.0    # after a command, watch the reply ring this long (0: never)
    reply_spins: NonNegInt = 20          # loop passes before the first sleep while a reply is awaited

    def check(self):
        return [(k, f"= {ep!r}: expected ipc://PATH or tcp://HOST:PORT")
                for k in ("endpoint", "pub_endpoint")
                if (ep := getattr(self, k)) and not ep.startswith(("ipc://", "tcp://"))]


class Telemetry(Table):
    metrics_port: Port = 0               # 0: no Prometheus exporter


#: Pre-trade risk limits (livestack.core.RISK_KEYS), validated by ``livestack.core.parse_risk``.
RISK_DEFAULTS: dict[str, Any] = {"max_order_qty": 100, "max_position": 200, "max_open_orders": 16,
                                 "price_band_ticks": 50, "submit_rate": 200, "cancel_rate": 200,
                                 "max_in_flight": 32}


def _default_instruments():
    return [InstrumentTable(id=1, symbol="SIM")]


Instruments = Annotated[list[InstrumentTable], Meta(min_length=1)]


class Config(Table):
    """The whole ``livestack run`` config (``livestack config show`` prints it with defaults)."""

    session: Session = msgspec.field(default_factory=Session)
    cpu: CpuTable = msgspec.field(default_factory=CpuTable)
    harness: Harness = msgspec.field(default_factory=Harness)
    rings: Rings = msgspec.field(default_factory=Rings)
    instruments: Instruments = msgspec.field(default_factory=_default_instruments)
    feed: Feed = msgspec.field(default_factory=Feed)
    venue: Venue = msgspec.field(default_factory=Venue)
    #: [[feeds]] / [[venues]]: several named feeds and venues in one session (node/config.py
    #: normalizes: after validate both lists are always filled, the shorthand as one named "default")
    feeds: list[NamedFeed] = msgspec.field(default_factory=list)
    venues: list[NamedVenue] = msgspec.field(default_factory=list)
    strategy: Strategy = msgspec.field(default_factory=Strategy)
    #: [recovery]: harness restart and pending/reject-storm timeouts (livestack/harness/recovery.py)
    recovery: RecoveryConfig = msgspec.field(default_factory=RecoveryConfig)
    #: [[strategies]]: several per session, each checked by livestack.strategies.config.check_set
    strategies: list[dict[str, Any]] = msgspec.field(default_factory=list)
    risk: dict[str, Any] = msgspec.field(default_factory=lambda: dict(RISK_DEFAULTS))
    writer: Writer = msgspec.field(default_factory=Writer)
    control: Control = msgspec.field(default_factory=Control)
    telemetry: Telemetry = msgspec.field(default_factory=Telemetry)

    def check(self):
        out = []
        ids, syms = set(), set()
        for i, inst in enumerate(self.instruments):  # a symbol may repeat on another feed (spot + USD-M)
            if inst.id in ids or (inst.feed, inst.symbol) in syms:
                out.append((f"instruments[{i}]", f": duplicate id or symbol {inst.id}/{inst.symbol}"))
            ids.add(inst.id)
            syms.add((inst.feed, inst.symbol))
        for key, items in (("feeds", self.feeds), ("venues", self.venues)):
            names = [x.name for x in items]
            for n in sorted({n for n in names if names.count(n) > 1}):
                out.append((key, f": name {n!r} given more than once"))
        return out


# -- kinds registry ----------------------------------------------------------------------------
#: feed kind -> its options Struct ("module:Name", imported when used)
FEED_KINDS: dict[str, str | type] = {
    "sim": "livestack.feeds.sim_options:SimFeedOptions",
    "binance": "livestack.feeds.binance_options:BinanceFeedOptions",
    "okx": "livestack.feeds.venue_ws:OkxFeedOptions",
    "kraken": "livestack.feeds.venue_ws:KrakenFeedOptions",
    "dbn": "livestack.feeds.dbn:DbnFeedOptions",
    "nats": "livestack.feeds.nats:MdRelayOptions",
}
#: venue kind -> its options Struct
VENUE_KINDS: dict[str, str | type] = {
    "sim": "livestack.venues.sim_options:SimVenueOptions",
    "fix": "livestack.venues.fix.options:FixVenueOptions",
    "binance": "livestack.venues.binance.config:BinanceVenueOptions",
}


def register_feed(kind: str, options: str | type) -> None:
    """Declare feed kind ``kind`` with its options Struct (or ``"module:Name"``)."""
    FEED_KINDS[kind] = options


def register_venue(kind: str, options: str | type) -> None:
    VENUE_KINDS[kind] = options


def options_struct(registry: dict, kind: str) -> type:
    target = registry[kind]
    if isinstance(target, str):
        mod, _, name = target.partition(":")
        target = registry[kind] = getattr(importlib.import_module(mod), name)
    return target


# -- the walker --------------------------------------------------------------------------------
class _Bad:
    """Marker: this value had problems (already reported)."""


BAD = _Bad()


def did_you_mean(word: str, known) -> str:
    near = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"did you mean '{near[0]}'?; " if near else ""


def _is_struct(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _strip(tp):
    """``Annotated[X, ...]`` -> X (constraints stay with msgspec for scalars)."""
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _type_name(v) -> str:
    return {dict: "table", list: "array"}.get(type(v), type(v).__name__)


class _Unshown:
    def __repr__(self):
        return ""


def _scalar(value, tp, path, errors):
    try:
        return msgspec.convert(value, tp)
    except msgspec.ValidationError as e:
        msg, _, sub = str(e).partition(" - at `$")
        if sub:  # inside the value: "[0]`" -> path[0], and the value is the item's, not shown
            path += sub.rstrip("`")
            value = _Unshown()
        if msg.startswith("Expected `") and ", got `" in msg:
            want = msg[len("Expected `"):msg.index("`", len("Expected `"))].replace("array", "list")
            got = msg.rsplit(", got `", 1)[1].rstrip("`").replace("array", "list").replace("object", "table")
            errors.append(f"'{path}' must be {want}, got {got} {value!r}".rstrip())
        elif msg.startswith("Expected `"):  # a range: "Expected `int` >= 0"
            cond = msg.split("` ", 1)[1] if "` " in msg else msg
            errors.append(f"'{path}' must be {cond}, got {value!r}".rstrip(", got "))
        elif msg.startswith("Invalid enum value"):
            choices = typing.get_args(_strip(tp))
            errors.append(f"'{path}' = {value!r}: expected one of {', '.join(map(str, choices))} "
                          f"({did_you_mean(str(value), map(str, choices)).rstrip('; ')})".replace(" ()", ""))
        else:
            errors.append(f"'{path}': {msg}")
        return BAD


def convert(value, tp, path: str, errors: list[str]):
    """``value`` (TOML data) as type ``tp``; every problem appended to ``errors`` with its path
    (returns ``BAD`` then). Structs are walked key by key so one bad key does not hide another."""
    inner = _strip(tp)
    origin = typing.get_origin(inner)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = typing.get_args(inner)
        structs = [a for a in args if _is_struct(_strip(a))]
        if structs and isinstance(value, dict):
            return convert(value, structs[0], path, errors)
        if value is None and type(None) in args:
            return None
        return _scalar(value, tp, path, errors)
    if _is_struct(inner):
        return _struct(value, inner, path, errors)
    if origin is list and _is_struct(_strip(typing.get_args(inner)[0])):
        if not isinstance(value, list):
            errors.append(f"'{path}' must be an array of tables, got {_type_name(value)}")
            return BAD
        metas = typing.get_args(tp)[1:] if tp is not inner else ()
        if not value and any(getattr(m, "min_length", 0) for m in metas):
            errors.append(f"'{path}' must be a non-empty array of tables")
            return BAD
        items = [convert(v, typing.get_args(inner)[0], f"{path}[{i}]", errors) for i, v in enumerate(value)]
        return BAD if any(x is BAD for x in items) else items
    if origin is dict and _is_struct(_strip(typing.get_args(inner)[1])):
        if not isinstance(value, dict):
            errors.append(f"'{path}' must be a table of tables, got {_type_name(value)}")
            return BAD
        items = {k: convert(v, typing.get_args(inner)[1], f"{path}.{k}", errors) for k, v in value.items()}
        return BAD if any(x is BAD for x in items.values()) else items
    return _scalar(value, tp, path, errors)


def _struct(value, tp, path, errors):
    where = f"'{path}'" if path else "the config"
    if not isinstance(value, dict):
        errors.append(f"{where} must be a table, got {_type_name(value)}")
        return BAD
    fields = {f.encode_name: f for f in msgspec.structs.fields(tp)}
    n0 = len(errors)
    kwargs = {}
    for key, v in value.items():
        sub = f"{path}.{key}" if path else key
        f = fields.get(key)
        if f is None:
            errors.append(f"unknown key '{sub}' ({did_you_mean(key, fields)}known: {', '.join(fields)})")
            continue
        r = convert(v, f.type, sub, errors)
        if r is not BAD:
            kwargs[f.name] = r
    for key, f in fields.items():
        if f.required and key not in value:
            errors.append(f"{where} needs '{key}'")
    if len(errors) > n0:
        return BAD
    try:
        obj = tp(**kwargs)  # runs a __post_init__ (a Struct handed over may validate there)
    except (ValueError, TypeError) as e:
        errors.append(f"{where}: {e}")
        return BAD
    check = getattr(obj, "check", None)  # optional: cross-field rules as (key, message) pairs
    for key, msg in (check() if check is not None else ()):
        errors.append(f"'{path + '.' if path else ''}{key}'{'' if msg.startswith(':') else ' '}{msg}")
    return obj if len(errors) == n0 else BAD
