"""Offline runner: the same Core Runtime over a recorded capture, with a simulated venue in the
same process (fill model: ``livestack/backtest/sim.pyx``)."""

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
    ``[core]`` (``book_depth``, ``book_top_levels``, ``max_orders``, ``live_cap``, ``max_intents``)."""
    with open(path, "rb") as f:
        cfg = tomllib.load(f)
    known = {"instrument", "risk", "strategy", "core"}
    for k in cfg:
        if k not in known:
            raise ValueError(f"config {path}: unknown table {k!r} (known: {sorted(known)})")
    return cfg


def instrument_for(market: str, cfg: dict | None = None) -> Instrument:
    base = {"usdm": BTCUSDT_USDM, "spot": BTCUSDT_SPOT}.get(market)
    if base is None:
        raise ValueError(f"market {market!r}: expected usdm or spot")
    over = (cfg or {}).get("instrument", {})
    return replace(base, **over) if over else base


def build_core(strategy_name: str, instrument: Instrument, cfg: dict | None = None) -> Core:
    from livestack import strategies

    cfg = cfg or {}
    scfg = cfg.get("strategy", {})
    strat = strategies.get(strategy_name, scfg.get("params") or None)
    return Core([instrument], cfg.get("risk", DEFAULT_RISK), strat, **cfg.get("core", {}))


def run_backtest(md, strategy_name: str, instrument: Instrument, cfg: dict | None = None,
                 collect: bool = True) -> dict:
    """Run the capture records ``md`` through a fresh core with ``strategy_name``; returns the
    sim's output dict plus ``core`` (the Core), ``counters`` and ``wall_s``."""
    from livestack.backtest.sim import run

    core = build_core(strategy_name, instrument, cfg)
    t0 = time.perf_counter()
    out = run(core, md, collect=collect)
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
