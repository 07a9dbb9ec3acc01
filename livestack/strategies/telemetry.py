"""Per-strategy figures: which strategy owns which instrument, and the sums over its instruments.

Each instrument belongs to at most one strategy, so a strategy's figures are the sums over its
instruments: orders sent, fills, denials, realized / unrealized PnL in quote currency (positions stay
per instrument: instruments of one strategy may have different base assets). Its errors are its own
(the ANOMALY_TEXT records name the strategy).

* the harness registers the strategies and the instrument owners in the telemetry block at start
  (:func:`register_strategies`); the block counts per instrument and per strategy;
* ``livestack ctl positions``, ``livestack top`` and ``/metrics`` read the block and sum with
  :func:`per_strategy`;
* ``livestack records summary`` groups by the session file's ``strategy`` attribute (each identity
  has ``name`` and ``instruments``): :func:`strategy_map`.
"""

from __future__ import annotations

import json
import logging

from livestack.strategies.config import short_name


def owners(core) -> tuple[list[str], dict[int, int]]:
    """(strategy names by index, {instrument index: strategy index}) of the core's strategy: the
    members of a ``[[strategies]]`` set, or one strategy owning every instrument (none: empty)."""
    s = core.strategy
    if s is None:
        return [], {}
    if hasattr(s, "owners"):  # StrategySet
        return [m.name for m in s.members], s.owners()
    return [short_name(s.name)], {i: 0 for i in range(len(core.instruments))}


def register_strategies(telemetry, core) -> None:
    """Harness, at start: strategy names and the instrument owners into the telemetry block
    (instrument slot = core index). A failure is logged, never fatal: telemetry must not stop trading."""
    try:
        _register(telemetry, core)
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).exception("per-strategy telemetry not registered")


def _register(telemetry, core) -> None:
    from livestack.telemetry.block import MAX_INSTRUMENTS, MAX_STRATEGIES

    names, own = owners(core)
    for k, name in enumerate(names[:MAX_STRATEGIES]):
        telemetry.register_strategy(k, name)
    for i, k in own.items():
        if i < MAX_INSTRUMENTS and k < MAX_STRATEGIES:
            telemetry.set_instrument_strategy(i, k)


def _quote(v: int, p: dict) -> float:
    return v / 10 ** (p["price_decimals"] + p["qty_decimals"])


def per_strategy(positions: list[dict], strategies: list[dict]) -> list[dict]:
    """One row per strategy from :meth:`TelemetryBlock.positions` / ``strategies``: name,
    instruments (symbols), orders_sent, fills, denials, errors, stopped, realized_pnl,
    unrealized_pnl, pnl (quote currency), and ``positions`` {symbol: net qty in base units}."""
    rows = {s["index"]: {"strategy": s["index"], "name": s["name"], "instruments": [], "positions": {},
                         "orders_sent": 0, "fills": 0, "denials": 0, "errors": int(s["errors"]),
                         "stopped": bool(s["stopped"]), "realized_pnl": 0.0, "unrealized_pnl": 0.0}
            for s in strategies}
    for p in positions:
        r = rows.get(p.get("strategy", -1))
        if r is None:
            continue
        sym = p["symbol"] or str(p["instrument"])
        r["instruments"].append(sym)
        r["positions"][sym] = p["net_qty"] / 10 ** p["qty_decimals"]
        for k in ("orders_sent", "fills", "denials"):
            r[k] += int(p.get(k, 0))
        r["realized_pnl"] += _quote(p["realized_pnl"], p)
        r["unrealized_pnl"] += _quote(p["unrealized_pnl"], p)
    for r in rows.values():
        r["pnl"] = r["realized_pnl"] + r["unrealized_pnl"]
    return [rows[k] for k in sorted(rows)]


def strategy_map(ident, symbols: list[str]) -> list[tuple[str, list[str]]]:
    """[(name, its symbols)] from a session file's ``strategy`` attribute (JSON text, a dict for one
    strategy, a list for ``[[strategies]]``); an identity without ``instruments`` (files from before
    they were stamped) owns every instrument of ``symbols``. Empty for no strategy."""
    if isinstance(ident, bytes):
        ident = ident.decode()
    if isinstance(ident, str):
        try:
            ident = json.loads(ident)
        except ValueError:
            return [(ident, list(symbols))] if ident and ident != "none" else []
    if isinstance(ident, dict):
        if ident.get("ref", "none") == "none":
            return []
        ident = [ident]
    if not isinstance(ident, list):
        return []
    out = []
    for k, d in enumerate(ident):
        if not isinstance(d, dict):
            continue
        name = d.get("name") or short_name(str(d.get("ref", f"#{k}")))
        out.append((name, list(d.get("instruments") or symbols)))
    return out
