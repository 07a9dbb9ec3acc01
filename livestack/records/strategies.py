"""A session file's figures per strategy, and its strategy errors with their messages.

The session file's ``strategy`` attribute names each strategy and its instruments (one strategy:
every instrument; ``[[strategies]]``: each entry's, an instrument belongs to at most one), so a
strategy's orders, fills, denials and PnL are the sums over its instruments' records; positions stay
per instrument. Its errors are the ANOMALY_TEXT records carrying its index (each follows the
STRATEGY_ERROR ANOMALY of the failed call, same hseq, and holds the message).

Used by ``livestack records summary`` and ``livestack records report``.
"""

from __future__ import annotations

import numpy as np

#: distinct error messages listed per strategy (the rest are counted)
MAX_MESSAGES = 10


def _per_instrument(s, name: str, rows: int, weight: str | None = None) -> dict[int, int]:
    """Rows (or the sum of ``weight``) of dataset ``name`` per instrument id, streamed."""
    out: dict[int, int] = {}
    if name not in s.file or s.file[name].shape[0] == 0:
        return out
    for a in s.iter_raw(name, rows):
        ids = a["instrument"].astype(np.int64)
        w = a[weight].astype(np.int64) if weight else None
        u, inv = np.unique(ids, return_inverse=True)
        tot = np.bincount(inv.reshape(-1), weights=w, minlength=len(u))
        for i, n in zip(u.tolist(), tot.tolist()):
            out[i] = out.get(i, 0) + int(n)
    return out


def error_texts(s, rows: int = 1 << 20):
    """The ANOMALY_TEXT records as a DataFrame (hseq, strategy, action, error_code, text ...); None
    when the file has none."""
    if "anomaly_text" not in s.file or s.file["anomaly_text"].shape[0] == 0:
        return None
    import pandas as pd

    return pd.concat(list(s.iter_frames("anomaly_text", rows)), ignore_index=True)


def summarize(s, pnl: dict[str, dict], rows: int = 1 << 20) -> tuple[list[dict], list[dict]]:
    """(one row per strategy, the distinct error messages) of open session ``s``.

    ``pnl``: {symbol: {net_qty, realized_pnl, unrealized_pnl}} per instrument (``records summary``'s).
    A strategy row: name, instruments, orders (commands dispatched), fills, denials, errors,
    stopped (its on_error policy took it out), realized_pnl / unrealized_pnl / total_pnl (quote
    currency), positions {symbol: net qty}. An error message row: strategy, message, count,
    first_hseq, action, error_code.
    """
    from livestack.strategies.telemetry import strategy_map

    by_id = {i: d.get("symbol", f"#{i}") for i, d in s.instruments.items()}
    smap = strategy_map(s.attrs.get("strategy", ""), list(by_id.values()))
    if not smap:
        return [], []
    orders = _per_instrument(s, "order_cmd", rows)
    fills = _per_instrument(s, "fill", rows)
    denials = _per_instrument(s, "denial", rows, weight="count")
    texts = error_texts(s, rows)
    ids = {sym: i for i, sym in by_id.items()}
    out, messages = [], []
    for k, (name, syms) in enumerate(smap):
        mine = [ids[x] for x in syms if x in ids]
        p = [pnl.get(x, {}) for x in syms]
        row = {"strategy": k, "name": name, "instruments": list(syms),
               "orders": sum(orders.get(i, 0) for i in mine), "fills": sum(fills.get(i, 0) for i in mine),
               "denials": sum(denials.get(i, 0) for i in mine), "errors": 0, "stopped": False,
               "realized_pnl": float(sum(d.get("realized_pnl", 0.0) for d in p)),
               "unrealized_pnl": float(sum(d.get("unrealized_pnl", 0.0) for d in p)),
               "positions": {x: float(pnl.get(x, {}).get("net_qty", 0.0)) for x in syms}}
        row["total_pnl"] = row["realized_pnl"] + row["unrealized_pnl"]
        if texts is not None:
            mine_t = texts[texts["strategy"] == k]
            row["errors"] = int(len(mine_t))
            row["stopped"] = bool((mine_t["action"] != "CONTINUE").any())
            for text, g in mine_t.groupby("text", sort=False):
                if len([m for m in messages if m["strategy"] == name]) >= MAX_MESSAGES:
                    break
                first = g.iloc[0]
                messages.append({"strategy": name, "message": str(text), "count": int(len(g)),
                                 "first_hseq": int(first.hseq), "action": str(first.action),
                                 "error_code": int(first.error_code)})
        out.append(row)
    return out, messages
