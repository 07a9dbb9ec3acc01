"""The stack's TOML configuration: defaults, loading and validation with clear errors.

Every key is declared here with its type and default; an unknown key, a wrong type or an
impossible value (a CPU that does not exist, a capacity that is not a power of two) is an error
that names the key. With no file, ``DEFAULTS`` is the embedded default: the simulated market and
exchange with the example market maker, no network and no files.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from typing import Any

from livestack.config import Instrument


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


DEFAULTS: dict[str, Any] = {
    "session": {
        "name": "default",             # records file <name>-<session id>.h5 ("default": <session id>.h5)
        "records_dir": "records",      # HDF5 session files go to <records_dir>/<date>/<session>.h5
        "duration_s": 0.0,             # 0: run until Ctrl-C / SIGTERM
        "status_interval_s": 1.0,      # one-line status print period (0: quiet)
    },
    "cpu": {                            # CPU of each process (-1: any CPU but the harness's)
        "harness": -1,                  # default: the last CPU
        "feed": -1,
        "venue": -1,
        "writer": -1,
        "control": -1,
        "monitor": -1,
    },
    "harness": {
        "timer_interval_ms": 100.0,     # idle timer tick (journaled input)
        "sched_fifo": False,            # try SCHED_FIFO (warns when not permitted)
        "mlockall": False,              # try mlockall (warns when not permitted)
        "batch": 64,                    # max records taken from one ring before polling the next
        "drain_timeout_s": 2.0,         # at stop: wait this long for venue answers to cancels
        "cancel_on_stop": True,
        "book_top_levels": 5,           # N of the session file's book_top rows (the core's top N after each
                                        # book change); 0 = none. Strategy depth: [[instruments]] book_depth
    },
    "rings": {
        "md_capacity": 1 << 16,
        "orders_capacity": 1 << 12,
        "exec_capacity": 1 << 12,
        "cmd_capacity": 1 << 8,
        "reply_capacity": 1 << 8,
        "events_capacity": 1 << 14,
        "records_capacity": 1 << 21,    # 256 MiB of 128-byte slots: minutes of journal at peak rate
    },
    "instruments": [
        {"id": 1, "symbol": "SIM", "venue": "sim", "price_decimals": 2, "qty_decimals": 3, "tick": 1, "lot": 1},
    ],
    "feed": {
        "kind": "sim",                  # sim: the seeded simulated market (published by the simulated venue
                                        #      itself when venue.kind = "sim") | binance (websocket feed)
        "options": {},
    },
    "venue": {
        "kind": "sim",                  # sim | fix
        "options": {},
    },
    "strategy": {
        "name": "mm_cy",
        "params": {},
    },
    # Pre-trade risk limits (livestack.core.RISK_KEYS): per-instrument keys at the top level apply to
    # every instrument, [risk.symbols.SYMBOL] overrides one. Ints are raw fixed-point units, strings
    # are decimals in the instrument's units. A [risk] table in a file is merged over these.
    "risk": {
        "max_order_qty": 100,
        "max_position": 200,
        "max_open_orders": 16,
        "price_band_ticks": 50,
        "submit_rate": 200,
        "cancel_rate": 200,
        "max_in_flight": 32,
    },
    "writer": {
        "enabled": True,
        "flush_interval_ms": 100.0,
        "fsync_interval_ms": 1000.0,    # fsync the session file at most this often (0 = never)
        "min_free_mb": 256.0,           # records disk: needed at start; below it REDUCING, below 1/2 HALTED,
                                        # below 1/4 the writer closes the file (livestack/records/diskspace.py)
    },
    "control": {
        "enabled": True,
        "endpoint": "",                 # default ipc://<session dir>/control.sock (0600); tcp:// needs CURVE
        "pub_endpoint": "",
        "curve_secret_key": "",         # path: the server's secret certificate (`livestack ctl keygen`, 0600)
        "curve_authorized_keys": [],    # paths: client public certificates (*.key files or directories)
    },
    "telemetry": {
        "metrics_port": 0,              # 0: no Prometheus exporter
    },
    "recovery": {},                     # issue 14 (rcv): livestack.harness.recovery.RecoveryConfig
}

_FREE_FORM = {("feed", "options"), ("venue", "options"), ("strategy", "params"), ("risk",), ("recovery",)}
_INSTRUMENT_KEYS = {"id": int, "symbol": str, "venue": str, "price_decimals": int, "qty_decimals": int,
                    "tick": int, "lot": int, "book_depth": int}


def _merge(path: tuple, base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        where = ".".join(path + (key,))
        if key not in base:
            raise ConfigError(f"config: unknown key '{where}' (known: {', '.join(sorted(base))})")
        default = base[key]
        if path + (key,) in _FREE_FORM:
            if not isinstance(value, dict):
                raise ConfigError(f"config: '{where}' must be a table")
            out[key] = {**default, **copy.deepcopy(value)} if key == "risk" else copy.deepcopy(value)
        elif isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config: '{where}' must be a table, got {type(value).__name__}")
            out[key] = _merge(path + (key,), default, value)
        elif key == "instruments":
            out[key] = value
        else:
            want = type(default)
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if want is list and isinstance(value, str):
                value = [value]  # one path where a list of paths is expected
            if want is list and not all(isinstance(v, str) for v in value if isinstance(value, list)):
                raise ConfigError(f"config: '{where}' must be a list of strings")
            if type(value) is not want:
                raise ConfigError(f"config: '{where}' must be {want.__name__}, got {type(value).__name__} {value!r}")
            out[key] = value
    return out


def _check_pow2(cfg, section, key):
    v = cfg[section][key]
    if v < 2 or v & (v - 1):
        raise ConfigError(f"config: '{section}.{key}' must be a power of two >= 2, got {v}")


def validate(raw: dict | None) -> dict:
    """Merge ``raw`` over the defaults and validate; returns the full configuration."""
    if raw is None:
        raw = {}
    cfg = _merge((), DEFAULTS, raw)
    ncpu = os.cpu_count() or 1
    if cfg["cpu"]["harness"] == -1:
        cfg["cpu"]["harness"] = ncpu - 1
    for proc, cpu in cfg["cpu"].items():
        if cpu != -1 and not (0 <= cpu < ncpu):
            raise ConfigError(f"config: 'cpu.{proc}' = {cpu}: this machine has CPUs 0..{ncpu - 1}")
    for key in cfg["rings"]:
        _check_pow2(cfg, "rings", key)
    if cfg["harness"]["timer_interval_ms"] <= 0:
        raise ConfigError("config: 'harness.timer_interval_ms' must be > 0")
    if cfg["harness"]["batch"] < 1:
        raise ConfigError("config: 'harness.batch' must be >= 1")
    if cfg["writer"]["flush_interval_ms"] <= 0:
        raise ConfigError("config: 'writer.flush_interval_ms' must be > 0")
    if cfg["writer"]["fsync_interval_ms"] < 0:
        raise ConfigError("config: 'writer.fsync_interval_ms' must be >= 0 (0 = never fsync)")
    if cfg["writer"]["min_free_mb"] < 0:
        raise ConfigError("config: 'writer.min_free_mb' must be >= 0 (0 = no free-space guard)")
    if cfg["feed"]["kind"] not in ("sim", "binance"):
        raise ConfigError(f"config: 'feed.kind' = {cfg['feed']['kind']!r}: expected sim or binance "
                          "(to replay a capture, use venue.kind = 'sim' with venue.options.market = 'capture')")
    if cfg["venue"]["kind"] not in ("sim", "fix"):
        raise ConfigError(f"config: 'venue.kind' = {cfg['venue']['kind']!r}: expected sim or fix")
    _check_control(cfg["control"])
    _check_strategy(cfg["strategy"])
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", cfg["session"]["name"]):
        raise ConfigError(f"config: 'session.name' = {cfg['session']['name']!r}: 1-64 letters, digits, '_', '.', '-' "
                          "(it goes into the records file name)")
    insts = instruments(cfg)  # validates
    try:
        from livestack.core import parse_risk
    except ImportError:  # core not built: checked again when the harness builds the core
        parse_risk = None
    if parse_risk is not None:
        try:
            parse_risk(cfg["risk"], insts, 64)
        except ValueError as e:
            raise ConfigError(f"config: [risk]: {e}") from None
    try:  # issue 14 (rcv): [recovery] is validated by its own msgspec Struct
        from livestack.harness.recovery import parse as _parse_recovery

        _parse_recovery(cfg.get("recovery"))
    except ValueError as e:
        raise ConfigError(f"config: {e}") from None
    return cfg


def _check_strategy(st: dict) -> None:
    """The strategy is one the harness can load (else it would die at start, after the other
    processes started); its params are checked when the harness builds it."""
    try:
        from livestack.strategies import NAMES
    except ImportError:  # strategies not built: the harness reports it at start
        return
    if st["name"] not in NAMES:
        import difflib

        near = difflib.get_close_matches(st["name"], NAMES, n=1)
        raise ConfigError(f"config: 'strategy.name' = {st['name']!r}: unknown strategy"
                          + (f" (did you mean {near[0]!r}?)" if near else "") + f"; known: {', '.join(NAMES)}")


def _check_control(ctl: dict) -> None:
    """The control endpoints and CURVE keys can be served safely (else ConfigError, before any
    process starts); key paths are made absolute so every process reads the same files."""
    if ctl["curve_secret_key"]:
        if re.fullmatch(r"\S{40}", ctl["curve_secret_key"]) and not os.path.exists(ctl["curve_secret_key"]):
            raise ConfigError("config: 'control.curve_secret_key' looks like a key: give the PATH of the secret "
                              "certificate (`livestack ctl keygen`), never the key itself, in a config file")
        ctl["curve_secret_key"] = os.path.abspath(os.path.expanduser(ctl["curve_secret_key"]))
    ctl["curve_authorized_keys"] = [os.path.abspath(os.path.expanduser(p)) for p in ctl["curve_authorized_keys"]]
    if not ctl["enabled"]:
        return
    from livestack.control import auth

    for key in ("endpoint", "pub_endpoint"):
        ep = ctl[key]
        if ep and not ep.startswith(("ipc://", "tcp://")):
            raise ConfigError(f"config: 'control.{key}' = {ep!r}: expected ipc://PATH or tcp://HOST:PORT")
    try:
        auth.check_options(ctl)
    except ValueError as e:
        raise ConfigError(f"config: [control]: {e}") from None


def instruments(cfg: dict) -> list[Instrument]:
    """The configured instruments as Instrument objects (validated: types, unique ids and symbols)."""
    items = cfg["instruments"]
    if not isinstance(items, list) or not items:
        raise ConfigError("config: 'instruments' must be a non-empty array of tables")
    out, ids, symbols = [], set(), set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(f"config: 'instruments[{i}]' must be a table")
        for key, value in item.items():
            if key not in _INSTRUMENT_KEYS:
                raise ConfigError(f"config: unknown key 'instruments[{i}].{key}' (known: {', '.join(_INSTRUMENT_KEYS)})")
            if type(value) is not _INSTRUMENT_KEYS[key]:
                raise ConfigError(f"config: 'instruments[{i}].{key}' must be {_INSTRUMENT_KEYS[key].__name__}")
        for key in ("id", "symbol"):
            if key not in item:
                raise ConfigError(f"config: 'instruments[{i}]' needs '{key}'")
        try:
            inst = Instrument(**item)
        except ValueError as e:
            raise ConfigError(f"config: 'instruments[{i}]': {e}") from None
        if inst.id in ids or inst.symbol in symbols:
            raise ConfigError(f"config: 'instruments[{i}]': duplicate id or symbol {inst.id}/{inst.symbol}")
        ids.add(inst.id)
        symbols.add(inst.symbol)
        out.append(inst)
    return out


def load(path: str | None) -> dict:
    """Load and validate a TOML file (None: the embedded default)."""
    if path is None:
        return validate({})
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config: file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config: {path} is not valid TOML: {e}") from None
    return validate(raw)
