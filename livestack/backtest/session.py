"""A backtest as a product: the run config, checks on the capture, and a session file like a live run's.

::

    --config RUN.toml ──node.config.load──▶ run config (the same schema as `livestack run`)
       (or none: MARKET_DEFAULTS)            + per-market defaults where the file says nothing
                                                 │ harness.process.build_core (as run / replay)
    capture ──check_capture (market, symbol)──▶ decode_capture ──check_md (snapshot, events)──▶ sim.run
                                                 │ journal=True: inputs + outputs in record-stream order
                                                 ▼
                                RecordWriter: the same session file a live run writes
                                (records, /journal, config, instruments, strategy identity)

Because the core is built from the stored run config exactly as the harness builds it, ``livestack
replay --verify`` re-runs a backtest's journal bit for bit, and ``records summary / export /
report`` read it like any session.
"""

from __future__ import annotations

import copy
import gzip
import json
import os

#: Per-market defaults that trade on the shared captures (Binance BTCUSDT 2024-08-08): applied
#: only where the config file leaves them out. Quantities are decimal strings (risk) or raw units
#: of the market's instrument (strategy params), whole multiples of its lot: spot BTCUSDT has 8 qty
#: decimals and a lot of 1000 (0.00001 BTC), so the strategies' built-in quote size 10 would be
#: denied BAD_QTY on every order.
MARKET_DEFAULTS = {
    "usdm": {
        "instrument": {"id": 1, "symbol": "BTCUSDT", "venue": "binance-usdm", "price_decimals": 2,
                       "qty_decimals": 3, "tick": 10, "lot": 1},
        "risk": {"max_order_qty": "0.05", "max_position": "0.2", "max_open_orders": 16, "price_band_bps": 500,
                 "submit_rate": 200, "cancel_rate": 200, "max_in_flight": 32},
        "params": {"quote_qty": 10, "take_qty": 10, "max_position": 50},            # 0.01 / 0.05 BTC
    },
    "spot": {
        "instrument": {"id": 1, "symbol": "BTCUSDT", "venue": "binance", "price_decimals": 2,
                       "qty_decimals": 8, "tick": 1, "lot": 1000},
        "risk": {"max_order_qty": "0.05", "max_position": "0.2", "max_open_orders": 16, "price_band_bps": 500,
                 "submit_rate": 200, "cancel_rate": 200, "max_in_flight": 32},
        "params": {"quote_qty": 100_000, "take_qty": 100_000, "max_position": 500_000},  # 0.001 / 0.005 BTC
    },
}
#: strategy params each family reads (the defaults above only fill these)
_FAMILY_PARAMS = {"mm": ("quote_qty", "max_position"), "taker": ("take_qty", "max_position")}
#: backtest options in the run config's [venue.options] (the simulated venue's latencies and seed)
from livestack.backtest import VENUE_OPTIONS  # noqa: E402


class BacktestError(ValueError):
    """The backtest cannot run as asked: a message for the user, never a traceback."""


# ----------------------------------------------------------------------------------------------
# the capture
# ----------------------------------------------------------------------------------------------
def sniff_capture(path: str, lines: int = 400) -> dict:
    """What a Binance capture holds, from its first lines: ``market`` ("usdm" when depth diffs carry
    ``pu``, "spot" when they do not, None if no diff seen), ``symbol``, ``snapshot`` (a REST depth
    snapshot line seen), ``messages`` read. Raises BacktestError when it is not such a capture."""
    if not os.path.exists(path):
        raise BacktestError(f"capture {path}: no such file")
    opener = gzip.open if path.endswith(".gz") else open
    out = {"market": None, "symbol": None, "snapshot": False, "messages": 0}
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(f):
                if i >= lines:
                    break
                head, _, body = line.partition(" ")
                if not head.strip().isdigit():
                    raise BacktestError(f"capture {path}: line {i + 1} is not '<receive ns> <json>' "
                                        "(a Binance websocket capture, as in ../shared/data/binance)")
                try:
                    msg = json.loads(body)
                except ValueError:
                    continue  # malformed lines are counted by the decoder, not fatal
                out["messages"] += 1
                d = msg.get("data", msg) if isinstance(msg, dict) else {}
                if not isinstance(d, dict):
                    continue
                if "lastUpdateId" in d:
                    out["snapshot"] = True
                if d.get("e") == "depthUpdate":
                    out["symbol"] = out["symbol"] or d.get("s")
                    if out["market"] is None:
                        out["market"] = "usdm" if "pu" in d else "spot"
                elif d.get("s") and not out["symbol"]:
                    out["symbol"] = d.get("s")
    except (OSError, EOFError, UnicodeError) as e:
        raise BacktestError(f"capture {path}: cannot read it ({e})") from None
    if out["messages"] == 0:
        raise BacktestError(f"capture {path}: no market-data message in it")
    return out


def check_md(md, path: str, market: str, symbol: str, saw_depth: bool = True) -> None:
    """The decoded capture can drive a backtest: it has a book snapshot and market events.
    ``saw_depth``: the capture has depth diffs (``sniff_capture``'s market is not None)."""
    from livestack.schema import DTYPES, FeedStatus, RecordKind

    kinds = md["kind"]
    events = int((kinds != RecordKind.MD_STATUS).sum())
    status = md[kinds == RecordKind.MD_STATUS].view(DTYPES["MD_STATUS"])
    synced = bool((status["status"] == FeedStatus.SNAPSHOT_END).any())
    if saw_depth and not synced:
        raise BacktestError(f"capture {path}: no order-book snapshot (or none that joins the depth diffs): the "
                            "book never becomes valid, so no strategy could quote. A Binance capture needs the REST "
                            "depth snapshot line (lastUpdateId) recorded after the first diffs")
    if events == 0:
        raise BacktestError(f"capture {path}: no market events for {symbol} on market {market}: nothing to "
                            "backtest (wrong --market, or an instrument symbol that is not in the capture?)")
    if not synced:
        raise BacktestError(f"capture {path}: no depth updates and no order-book snapshot for {symbol}: the book "
                            "never becomes valid, so no strategy could quote")


# ----------------------------------------------------------------------------------------------
# the config
# ----------------------------------------------------------------------------------------------
#: markets whose captures are OKX / Kraken websocket sessions (``livestack.feeds.capture.decode_capture``
#: runs them through the checksummed book decoders); their instrument comes from the capture
L2_MARKETS = ("okx", "kraken")


def sniff_l2(path: str, market: str | None = None) -> dict | None:
    """An OKX or Kraken capture (livestack or cryptofeed format): ``market``, ``symbol`` and the
    ``decimals`` (price, qty) its messages quote; None when it holds no OKX / Kraken book or trade
    message (or not of ``market`` when given). Several symbols: the first seen."""
    from livestack.feeds import kraken, okx
    from livestack.feeds.capture_formats import read_messages

    if not os.path.exists(path):
        raise BacktestError(f"capture {path}: no such file")
    try:
        rd = read_messages(path)
    except (OSError, EOFError, UnicodeError, ValueError) as e:
        if market is None:
            return None  # not one of these: sniff_capture says what it is not
        raise BacktestError(f"capture {path}: cannot read it ({e})") from None
    for name, mod in (("okx", okx), ("kraken", kraken)):
        if market not in (None, name):
            continue
        seen: dict = {}
        for m in rd.messages:
            mod.scan_decimals(m.data, seen)
        seen = {sym: d for sym, d in seen.items() if d != [0, 0]}
        if seen:
            sym = next(iter(seen))
            return {"market": name, "symbol": sym, "symbols": list(seen), "messages": len(rd.messages),
                    "decimals": tuple(min(max(x, 0), 18) for x in seen[sym])}
    return None


def l2_defaults(info: dict) -> dict:
    """``MARKET_DEFAULTS`` for an OKX / Kraken capture: its symbol and decimals (tick and lot: one
    unit of the last quoted decimal), quotes of 0.001 base units, the same risk limits as Binance's."""
    pd, qd = info["decimals"]
    unit = 10 ** max(qd - 3, 0)  # 0.001 of the base asset (or 1 unit if the venue quotes fewer decimals)
    return {
        "instrument": {"id": 1, "symbol": info["symbol"], "venue": info["market"], "price_decimals": pd,
                       "qty_decimals": qd, "tick": 1, "lot": 1},
        "risk": {"max_order_qty": "0.05", "max_position": "0.2", "max_open_orders": 16, "price_band_bps": 500,
                 "submit_rate": 200, "cancel_rate": 200, "max_in_flight": 32},
        "params": {"quote_qty": unit, "take_qty": unit, "max_position": 50 * unit},
    }


def backtest_config(config_path: str | None, strategy: str | None, market: str, symbol: str | None = None,
                    defaults: dict | None = None) -> dict:
    """The run config of a backtest: ``config_path`` loaded by ``node.config.load`` (the file ``run``
    takes), with the market's defaults (``MARKET_DEFAULTS``) wherever it says nothing: the
    instrument (when it has no ``[[instruments]]``), ``[risk]`` (when it has none) and the strategy's
    quantity params (when not set). ``strategy`` (``--strategy``) overrides ``strategy.name``."""
    from livestack.node import config as cfgmod

    raw = {}
    if config_path is not None:
        import tomllib

        try:
            with open(config_path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise BacktestError(f"config: file {config_path} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise BacktestError(f"config: {config_path} is not valid TOML: {e}") from None
    d = defaults or MARKET_DEFAULTS[market]  # OKX / Kraken: l2_defaults of the capture
    first = copy.deepcopy(raw)
    if strategy:  # --strategy replaces the file's strategy before anything is checked against it
        first.setdefault("strategy", {})["name"] = strategy
    if "instruments" not in raw:  # the strategy's params convert for the instrument it will trade
        first["instruments"] = [dict(d["instrument"], symbol=symbol or d["instrument"]["symbol"])]
    try:
        cfg = cfgmod.validate(first)
    except cfgmod.ConfigError as e:
        raise BacktestError(str(e)) from None
    if "risk" not in raw:
        cfg["risk"] = copy.deepcopy(d["risk"])
    params = dict(cfg["strategy"].get("params") or {})
    family = cfg["strategy"]["name"].split("_")[0]
    for k in _FAMILY_PARAMS.get(family, ()):
        params.setdefault(k, d["params"][k])
    cfg["strategy"]["params"] = params
    try:
        cfg = cfgmod.validate(_raw_of(cfg))
    except cfgmod.ConfigError as e:
        raise BacktestError(str(e)) from None
    if len(cfg["instruments"]) != 1:
        raise BacktestError(f"config: a backtest runs one capture of one instrument; the config has "
                            f"{len(cfg['instruments'])} [[instruments]]")
    # unknown [venue.options] keys are refused by the config schema (node/schema.py) above
    return cfg


def _raw_of(cfg: dict) -> dict:
    """A merged config back in the shape ``validate`` takes (cpu -1 defaults resolved are kept)."""
    return copy.deepcopy(cfg)


def capture_of(config_path: str | None) -> tuple[str | None, str | None]:
    """``(capture_path, capture_market)`` of a run config that replays a capture through the simulated
    venue (``[venue.options]``), so ``backtest --config`` alone backtests what ``run`` would replay."""
    if config_path is None:
        return None, None
    import tomllib

    try:
        with open(config_path, "rb") as f:
            opts = (tomllib.load(f).get("venue") or {}).get("options") or {}
    except (OSError, tomllib.TOMLDecodeError):
        return None, None  # reported by backtest_config
    return opts.get("capture_path"), opts.get("capture_market")


def venue_options(cfg: dict) -> dict:
    return {k: v for k, v in cfg["venue"]["options"].items() if k in VENUE_OPTIONS}


# ----------------------------------------------------------------------------------------------
# the run and the session file
# ----------------------------------------------------------------------------------------------
def run(md, cfg: dict, *, collect: bool = True, journal: bool = True, progress=None) -> dict:
    """The capture ``md`` through a core built as the harness builds it from ``cfg``, with the
    simulated venue of ``[venue.options]``; returns ``sim.run``'s dict plus ``core``, ``counters``, ``wall_s``."""
    import time

    from livestack.backtest import venue_timeline
    from livestack.backtest.sim import run as sim_run
    from livestack.harness.process import build_core
    from livestack.node import config as cfgmod

    try:
        core = build_core(cfg)
    except ValueError as e:  # strategy params, risk limits
        raise BacktestError(f"config: {e}") from None
    engine, md_delivered, engine_ts = venue_timeline(md, cfgmod.instruments(cfg), venue_options(cfg))
    t0 = time.perf_counter()
    out = sim_run(core, md_delivered, collect=collect, engine=engine, engine_ts=engine_ts, journal=journal,
                  progress=progress)
    out["wall_s"] = time.perf_counter() - t0
    out["core"] = core
    out["counters"] = core.counters()
    return out


def write_session(path, out: dict, cfg: dict, info: dict) -> str:
    """Write a backtest run with ``journal=True`` as a session file: the record stream a live harness
    sends the writer (inputs flagged JOURNAL, each followed by its outputs; seq 1..n), written by
    the same RecordWriter, with the run config, instruments and strategy identity as attributes."""
    import numpy as np

    from livestack.node import config as cfgmod
    from livestack.records.writer import RecordWriter, session_identity

    recs = out["records"]
    recs["seq"] = np.arange(1, len(recs) + 1, dtype=np.uint64)
    first_ts = int(recs["ts"][0]) if len(recs) else 0
    attrs = {"session": info.get("session") or os.path.splitext(os.path.basename(str(path)))[0],
             "config": cfg, "cpu": {}, "instruments": [i.__dict__ for i in cfgmod.instruments(cfg)],
             "start_time_ns": first_ts, "backtest": info, **session_identity(cfg, "backtest")}
    last_ts = int(recs["ts"][-1]) if len(recs) else None
    w = RecordWriter(str(path), attrs, {"quiet": True})
    try:
        for a in range(0, len(recs), 1 << 16):
            w.write(recs[a:a + (1 << 16)])
        w.flush()
    except BaseException:
        w.abandon()
        raise
    w.close(stop_time_ns=last_ts, end={"harness_last_seq": len(recs), "records_produced": len(recs),
                                       "end_reason": "backtest"})
    return str(path)
