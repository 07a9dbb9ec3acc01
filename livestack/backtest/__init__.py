"""Offline runner: the same Core Runtime over a recorded capture, with the matching engine the
simulated venue process uses (``livestack/matching/engine.pyx``) in the same process, on the
capture's virtual time (``livestack/backtest/sim.pyx``)."""

from __future__ import annotations

import time
import tomllib
from dataclasses import replace

from livestack.config import BTCUSDT_SPOT, BTCUSDT_USDM, Instrument
from livestack.core import Core

#: Risk limits when the config has none: generous enough for the example strategies.
DEFAULT_RISK = {
    "max_order_qty": 1000,        # raw qty units (1 BTC at 3 decimals)
    "max_position": 5000,
    "max_open_orders": 16,
    "price_band_bps": 500,
}


def load_config(path) -> dict:
    """A backtest TOML: ``[instrument]`` (Instrument fields), ``[risk]`` (``Core`` risk dict,
    ``[risk.symbols.SYM]`` overrides), ``[strategy]`` ``name`` and ``[strategy.params]``,
    ``[core]`` (``book_depth``, ``book_top_levels``, ``max_orders``, ``live_cap``, ``max_intents``), ``[venue]``
    (latencies of the simulated venue: ``VENUE_OPTIONS``)."""
    with open(path, "rb") as f:
        cfg = tomllib.load(f)
    known = {"instrument", "risk", "strategy", "core", "venue"}
    for k in cfg:
        if k not in known:
            raise ValueError(f"config {path}: unknown table {k!r} (known: {sorted(known)})")
    unknown = set(cfg.get("venue", {})) - set(VENUE_OPTIONS)
    if unknown:
        raise ValueError(f"config {path}: [venue]: unknown option(s) {sorted(unknown)} (known: {list(VENUE_OPTIONS)})")
    return cfg


def instrument_for(market: str, cfg: dict | None = None) -> Instrument:
    base = {"usdm": BTCUSDT_USDM, "spot": BTCUSDT_SPOT}.get(market)
    if base is None:
        raise ValueError(f"market {market!r}: expected usdm or spot")
    over = (cfg or {}).get("instrument", {})
    return replace(base, **over) if over else base


def build_core(strategy_name: str, instrument: Instrument, cfg: dict | None = None) -> Core:
    from livestack.strategies import loader

    cfg = cfg or {}
    scfg = cfg.get("strategy", {})
    # registry name or a user strategy reference (pkg.mod:Class, path/file.py|.pyx:Class)
    strat = loader.load(loader.normalize(strategy_name), scfg.get("params") or None, instrument,
                        on_error=scfg.get("on_error"))
    return Core([instrument], cfg.get("risk", DEFAULT_RISK), strat, **cfg.get("core", {}))


#: ``[venue]`` options of a backtest: the simulated venue's (``livestack.venues.sim.DEFAULTS``), with
#: the same defaults, so a backtest and a sim venue process with the same settings fill alike.
VENUE_OPTIONS = ("order_latency_ns", "order_jitter_ns", "response_latency_ns", "response_jitter_ns",
                 "md_latency_ns", "md_jitter_ns", "seed", "max_orders")


def venue_timeline(md, instruments, venue: dict | None = None):
    """The matching engine and the market-data timeline of a backtest, exactly as the simulated
    venue process builds them for the same capture (``market="capture"``, replay speed 1, started at
    the capture's first receive time): returns ``(engine, md_delivered, engine_ts)``.

    ``engine_ts`` (when the venue's book moves) is the running maximum of the records' receive
    times; ``md_delivered`` is a copy of ``md`` with ``ts_event`` = ``engine_ts`` and header ``ts`` =
    ``engine_ts`` + md latency + seeded jitter, kept monotonic (``SimExchange._stamp_md``).
    """
    import numpy as np

    from livestack.feeds import sim as fsim
    from livestack.matching import MatchingEngine
    from livestack.venues.sim import DEFAULTS as VENUE_DEFAULTS

    venue = dict(venue or {})
    unknown = set(venue) - set(VENUE_OPTIONS)
    if unknown:
        raise ValueError(f"[venue]: unknown option(s) {sorted(unknown)}; known: {list(VENUE_OPTIONS)}")
    opts = {k: VENUE_DEFAULTS[k] for k in VENUE_OPTIONS}
    opts.update(venue)
    ol, oj = int(opts["order_latency_ns"]), int(opts["order_jitter_ns"])
    rl = int(opts["response_latency_ns"] if opts["response_latency_ns"] is not None else ol)
    rj = int(opts["response_jitter_ns"] if opts["response_jitter_ns"] is not None else oj)
    seed = int(opts["seed"]) & 0xFFFFFFFF
    engine = MatchingEngine(instruments, ol, oj, rl, rj, seed=seed, exec_epoch=1,
                            max_orders=int(opts["max_orders"]))
    if md.dtype.itemsize != 64:
        raise ValueError(f"md: 64-byte records expected, got {md.dtype.itemsize}")
    out = np.ascontiguousarray(md).copy()
    v = out.view(fsim.MD_OVERLAY)
    engine_ts = np.maximum.accumulate(v["ts"].astype(np.int64)) if len(v) else np.zeros(0, np.int64)
    ts = engine_ts + int(opts["md_latency_ns"])
    jit = int(opts["md_jitter_ns"])
    if jit and len(ts):
        rng = np.random.Generator(np.random.PCG64([seed, 0x3D]))
        ts = ts + (rng.random(len(ts)) * (jit + 1)).astype(np.int64)
    if len(ts):
        ts = np.maximum.accumulate(ts)
    v["ts_event"] = engine_ts
    v["ts"] = ts
    v["seq"] = np.arange(1, len(v) + 1, dtype=np.uint64)  # as the venue's md publisher stamps them
    return engine, out, engine_ts


def run_backtest(md, strategy_name: str, instrument: Instrument, cfg: dict | None = None,
                 collect: bool = True) -> dict:
    """Run the capture records ``md`` through a fresh core with ``strategy_name`` and the matching
    engine (latencies from ``cfg["venue"]``, see :func:`venue_timeline`); returns the sim's output
    dict plus ``core`` (the Core), ``counters`` and ``wall_s``."""
    from livestack.backtest.sim import run

    core = build_core(strategy_name, instrument, cfg)
    engine, md_delivered, engine_ts = venue_timeline(md, [instrument], (cfg or {}).get("venue"))
    t0 = time.perf_counter()
    out = run(core, md_delivered, collect=collect, engine=engine, engine_ts=engine_ts)
    out["wall_s"] = time.perf_counter() - t0
    out["core"] = core
    out["counters"] = core.counters()
    return out


def write_session(path, out: dict, instrument: Instrument, cfg: dict, info: dict) -> None:
    """Write a backtest's core outputs (``run_backtest(..., collect=True)``) as a session file:
    the record stream a live harness would send the writer (seq 1..n, the same datasets, written
    by the same RecordWriter; ``open_session(path)["book_top"]``). Inputs are not journaled (the
    capture is the input), so ``livestack replay`` does not apply to it."""
    from dataclasses import asdict

    import numpy as np

    from livestack.records.writer import RecordWriter

    recs = out["records"].copy()
    recs["seq"] = np.arange(1, len(recs) + 1, dtype=np.uint64)
    attrs = {"session": f"backtest-{info.get('strategy', '')}", "config": dict(cfg, backtest=info),
             "instruments": [asdict(instrument)]}
    strat = out["core"].strategy if out.get("core") is not None else None
    if strat is not None and strat.identity:
        attrs["strategy"] = strat.identity
    with RecordWriter(str(path), attrs, {"quiet": True}) as w:
        for a in range(0, len(recs), 1 << 16):
            w.write(recs[a:a + (1 << 16)])
        w.flush()


def summary(out: dict, instrument: Instrument) -> dict:
    core = out["core"]
    c = out["counters"]
    pos = core.position(instrument.id)
    scale = 10 ** (instrument.price_decimals + instrument.qty_decimals)
    return {
        "events": out["inputs"], "md_events": out["md_events"], "exec_events": out["exec_events"],
        "orders": c["orders_sent"], "new": c["new_orders"], "cancels": c["cancels"],
        "replaces": c["replaces"], "fills": c["fills"], "denials": c["denials"],
        "denials_by_reason": c["denials_by_reason"], "anomalies": c["anomalies"],
        "anomalies_by_code": c["anomalies_by_code"],
        "position": pos["net_qty"] / 10 ** instrument.qty_decimals,
        "realized_pnl": pos["realized_pnl"] / scale, "unrealized_pnl": pos["unrealized_pnl"] / scale,
        "pnl": (pos["realized_pnl"] + pos["unrealized_pnl"]) / scale,
        "wall_s": out["wall_s"], "events_per_s": out["inputs"] / out["wall_s"] if out["wall_s"] > 0 else 0.0,
    }
