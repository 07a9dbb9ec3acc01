"""``livestack records report FILE [--html OUT]``: what a session did, as tables and plots.

Figures, all from the records of the file (a live run's or a backtest's):

* **orders and fills** - orders sent (NEW / CANCEL / REPLACE), fills, volume, notional and fees.
  A fill is *maker* when its order had been ACCEPTED (resting) before it, else *taker*; fees are
  ``notional x bps / 10^4`` at ``--maker-bps`` / ``--taker-bps`` (default 2 / 5, Binance USD-M's
  base rates; give your own), and the fees the venue reported (EXEC FEE rows: Binance's commission
  per fill, summed by fee asset);
* **PnL and position over time** - from the POSITION records (realized + unrealized at the mark);
* **latency quantiles per stage** - from the records' own times: ``md_feed`` (an md input's receive
  time minus the venue's event time), ``exec_feed`` (same for execution events), ``order_ack``
  (NEW dispatched → its ACCEPTED event received), ``cancel_ack`` (CANCEL dispatched → CANCELED
  received), ``first_fill`` (NEW dispatched → its first fill received);
* **denials** by reason (each DENIAL counts ``count`` times) and **anomalies** by code;
* **per strategy** - orders, fills, denials, errors and PnL summed over each strategy's instruments,
  and the strategy errors with their messages (``livestack.records.strategies``).

``--html OUT`` writes one self-contained HTML file: the tables, and matplotlib PNGs embedded as
``data:`` URIs. Each figure's ``<img>`` carries ``data-figure`` and its plotted numbers
(``data-points``, ``data-last``) so a reader (or a test) can check the plot against the records.
"""

from __future__ import annotations

import base64
import html
import io
import json
import sys

import numpy as np

from livestack.schema import DenyReason, ExecType, OrderCmdType, OrderState, RecordFlag  # noqa: F401

QUANTILES = (0.5, 0.9, 0.99, 1.0)


def _q(v: np.ndarray) -> dict:
    if len(v) == 0:
        return {"n": 0}
    v = np.asarray(v, dtype=np.float64)
    return {"n": int(len(v)), **{f"p{int(q * 100)}" if q < 1 else "max": float(np.quantile(v, q)) for q in QUANTILES}}


def analyse(path: str, maker_bps: float = 2.0, taker_bps: float = 5.0) -> dict:
    """Every figure of the report as plain numbers (what ``--json`` prints and the HTML shows)."""
    from livestack.records.cli import _enum_counts
    from livestack.records.reader import open_session

    with open_session(path) as s:
        a = s.attrs
        inst = s.instruments
        raw = {k: s.raw(k) for k in ("order_cmd", "order_state", "fill", "position", "exec")
               if k in s.file and s.file[k].shape[0]}
        md_lat = []
        for k in ("md_level", "md_trade", "md_bbo"):
            if k in s.file and s.file[k].shape[0]:
                for r in s.iter_raw(k, 1 << 20):
                    r = r[(r["flags"] & int(RecordFlag.JOURNAL)) != 0]
                    md_lat.append((r["ts"] - r["ts_event"]).astype(np.int64))
        denials = _enum_counts(s, "denial", "reason", "DenyReason", 1 << 20) if "denial" in s.file and s.file["denial"].shape[0] else {}
        from livestack.records import strategies

        per_strategy, strategy_errors = strategies.summarize(s, _last_pnl(s))
        anomalies = _enum_counts(s, "anomaly", "code", "Anomaly", 1 << 20) if "anomaly" in s.file and s.file["anomaly"].shape[0] else {}
    empty = lambda name: np.zeros(0, __import__("livestack.schema", fromlist=["DTYPES"]).DTYPES[name])  # noqa: E731
    cmds = raw.get("order_cmd", empty("ORDER_CMD"))
    states = raw.get("order_state", empty("ORDER_STATE"))
    fills = raw.get("fill", empty("FILL"))
    pos = raw.get("position", empty("POSITION"))
    execs = raw.get("exec", empty("EXEC"))
    execs = execs[(execs["flags"] & int(RecordFlag.JOURNAL)) != 0]  # the consumed venue events

    def dec(i, key):
        return int(inst.get(int(i), {}).get(key, 0))

    # orders and fills, fees
    accepted_at: dict[int, int] = {}
    for cid, st, seq in zip(states["client_order_id"].tolist(), states["state"].tolist(), states["seq"].tolist()):
        if st == OrderState.ACCEPTED and cid not in accepted_at:
            accepted_at[cid] = seq
    per_inst: dict[str, dict] = {}
    for f in fills:
        i = int(f["instrument"])
        sym = inst.get(i, {}).get("symbol", f"#{i}")
        pd_, qd = dec(i, "price_decimals"), dec(i, "qty_decimals")
        px, qty = int(f["price"]) / 10 ** pd_, int(f["qty"]) / 10 ** qd
        maker = accepted_at.get(int(f["client_order_id"]), 1 << 62) < int(f["seq"])
        d = per_inst.setdefault(sym, {"fills": 0, "maker_fills": 0, "taker_fills": 0, "bought": 0.0, "sold": 0.0,
                                      "notional": 0.0, "fees": 0.0})
        d["fills"] += 1
        d["maker_fills" if maker else "taker_fills"] += 1
        d["bought" if int(f["side"]) == 1 else "sold"] += qty
        d["notional"] += px * qty
        d["fees"] += px * qty * (maker_bps if maker else taker_bps) / 1e4
    orders = {"NEW": int((cmds["cmd"] == OrderCmdType.NEW).sum()), "CANCEL": int((cmds["cmd"] == OrderCmdType.CANCEL).sum()),
              "REPLACE": int((cmds["cmd"] == OrderCmdType.REPLACE).sum())}
    # PnL and position over time
    series = {}
    for i in sorted(set(pos["instrument"].tolist())):
        p = pos[pos["instrument"] == i]
        sc = 10 ** (dec(i, "price_decimals") + dec(i, "qty_decimals"))
        sym = inst.get(int(i), {}).get("symbol", f"#{i}")
        series[sym] = {"ts": p["ts"].astype(np.int64), "position": p["net_qty"] / 10 ** dec(i, "qty_decimals"),
                       "pnl": (p["realized_pnl"].astype(np.float64) + p["unrealized_pnl"]) / sc,
                       "realized": p["realized_pnl"] / sc}
    # latencies per stage (ns)
    new_ts = {int(c): int(t) for c, t, k in zip(cmds["client_order_id"], cmds["ts"], cmds["cmd"]) if k != OrderCmdType.CANCEL}
    cancel_ts = {int(c): int(t) for c, t, k in zip(cmds["client_order_id"], cmds["ts"], cmds["cmd"]) if k == OrderCmdType.CANCEL}
    ack, cack, first = [], [], {}
    for c, t, et in zip(execs["client_order_id"].tolist(), execs["ts"].tolist(), execs["exec_type"].tolist()):
        if et == ExecType.ACCEPTED and c in new_ts:
            ack.append(t - new_ts[c])
        elif et == ExecType.CANCELED and c in cancel_ts:
            cack.append(t - cancel_ts.pop(c))
        elif et in (ExecType.PARTIALLY_FILLED, ExecType.FILLED) and c in new_ts and c not in first:
            first[c] = t - new_ts[c]
    latency = {"md_feed": _q(np.concatenate(md_lat) if md_lat else np.zeros(0)),
               "exec_feed": _q((execs["ts"] - execs["ts_event"]).astype(np.int64)),
               "order_ack": _q(np.array(ack)), "cancel_ack": _q(np.array(cack)),
               "first_fill": _q(np.array(list(first.values())))}
    from decimal import Decimal

    from livestack.venues.fees import fees_of

    venue_fees: dict[str, Decimal] = {}   # what the venue charged (EXEC FEE), by fee asset
    for amount, asset in fees_of(execs).values():
        venue_fees[asset] = venue_fees.get(asset, Decimal(0)) + Decimal(amount)
    final = {sym: {"position": float(v["position"][-1]), "pnl": float(v["pnl"][-1]),
                   "realized": float(v["realized"][-1])} for sym, v in series.items() if len(v["ts"])}
    return {"file": path, "session": a.get("session", ""), "mode": a.get("mode", "live"),
            "strategy": (a.get("config") or {}).get("strategy", {}).get("name", "") if isinstance(a.get("config"), dict) else "",
            "orders": orders, "fills": int(len(fills)), "per_instrument": per_inst,
            "fees_total": float(sum(d["fees"] for d in per_inst.values())),
            "fee_rates_bps": {"maker": maker_bps, "taker": taker_bps},
            "venue_fees": {a: str(v) for a, v in sorted(venue_fees.items())},
            "final": final, "latency_ns": latency, "denials": denials, "anomalies": anomalies,
            "per_strategy": per_strategy, "strategy_errors": strategy_errors,
            "_series": series}


def _last_pnl(s) -> dict[str, dict]:
    """{symbol: net_qty, realized_pnl, unrealized_pnl} from each instrument's last POSITION record."""
    if "position" not in s.file or s.file["position"].shape[0] == 0:
        return {}
    out = {}
    for p in s.iter_frames("position"):
        for sym, g in p.groupby("symbol", sort=True):
            last = g.iloc[-1]
            out[sym] = {"net_qty": float(last.net_qty), "realized_pnl": float(last.realized_pnl),
                        "unrealized_pnl": float(last.unrealized_pnl)}
    return out


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def figures(r: dict) -> list[dict]:
    """The plots: one (name, png base64, points, last) per figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for sym, v in r["_series"].items():
        t = (v["ts"] - v["ts"][0]) / 1e9 if len(v["ts"]) else v["ts"]
        for key, label in (("pnl", "PnL (quote currency)"), ("position", "position (base units)")):
            fig, ax = plt.subplots(figsize=(8, 3))
            ax.step(t, v[key], where="post")
            ax.set_xlabel("seconds since the first position record")
            ax.set_ylabel(label)
            ax.set_title(f"{sym}: {label} over time")
            ax.grid(True, alpha=0.3)
            out.append({"name": f"{key}-{sym}", "png": _png(fig), "points": int(len(v[key])),
                        "last": float(v[key][-1]) if len(v[key]) else 0.0})
    lat = {k: v for k, v in r["latency_ns"].items() if v.get("n")}
    if lat:
        fig, ax = plt.subplots(figsize=(8, 3))
        names = list(lat)
        for j, q in enumerate(("p50", "p90", "p99")):
            ax.bar(np.arange(len(names)) + (j - 1) * 0.25, [lat[n][q] / 1e3 for n in names], width=0.25, label=q)
        ax.set_xticks(np.arange(len(names)), names)
        ax.set_ylabel("µs")
        ax.set_yscale("log")
        ax.legend()
        ax.set_title("latency quantiles per stage")
        out.append({"name": "latency", "png": _png(fig), "points": len(names), "last": float(lat[names[-1]]["p50"])})
    if r["denials"]:
        fig, ax = plt.subplots(figsize=(8, 3))
        ax.barh(list(r["denials"]), list(r["denials"].values()))
        ax.set_xlabel("denials")
        ax.set_title("denials by reason")
        out.append({"name": "denials", "png": _png(fig), "points": len(r["denials"]),
                    "last": float(sum(r["denials"].values()))})
    return out


def _table(rows: list[list], head: list[str]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{b}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.6f}".rstrip("0").rstrip(".")
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def to_html(r: dict) -> str:
    figs = figures(r)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>livestack report {html.escape(str(r['session']))}"
             "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>",
             f"<h1>session {html.escape(str(r['session']))}</h1>",
             f"<p>{html.escape(r['file'])} &middot; {html.escape(str(r['mode']))} &middot; strategy "
             f"{html.escape(str(r['strategy']))}</p>",
             "<h2>orders and fills</h2>",
             _table([[k, v] for k, v in r["orders"].items()] + [["fills", r["fills"]]], ["", "count"]),
             _table([[s, d["fills"], d["maker_fills"], d["taker_fills"], d["bought"], d["sold"], d["notional"], d["fees"]]
                     for s, d in r["per_instrument"].items()],
                    ["instrument", "fills", "maker", "taker", "bought", "sold", "notional", "fees"]),
             f"<p id='fees' data-fees='{r['fees_total']!r}'>fees at maker {r['fee_rates_bps']['maker']} bps / taker "
             f"{r['fee_rates_bps']['taker']} bps: {r['fees_total']:,.6f} (quote currency)</p>",
             "<h2>PnL and position</h2>",
             _table([[s, v["position"], v["realized"], v["pnl"], v["pnl"] - r["per_instrument"].get(s, {}).get("fees", 0.0)]
                     for s, v in r["final"].items()], ["instrument", "final position", "realized", "PnL", "PnL after fees"]),
             "<h2>latency per stage (µs)</h2>",
             _table([[k, v["n"]] + [v.get(q, float("nan")) / 1e3 if v["n"] else "" for q in ("p50", "p90", "p99", "max")]
                     for k, v in r["latency_ns"].items()], ["stage", "n", "p50", "p90", "p99", "max"]),
             "<h2>denials and anomalies</h2>",
             _table([[k, v] for k, v in r["denials"].items()], ["reason", "denials"]) if r["denials"] else "<p>no denials</p>",
             _table([[k, v] for k, v in r["anomalies"].items()], ["code", "anomalies"]) if r["anomalies"] else "<p>no anomalies</p>",
             "<h2>per strategy</h2>",
             _table([[x["name"], " ".join(x["instruments"]), x["orders"], x["fills"], x["denials"], x["errors"],
                      x["realized_pnl"], x["total_pnl"]] for x in r["per_strategy"]],
                    ["strategy", "instruments", "orders", "fills", "denials", "errors", "realized", "PnL"])
             if r["per_strategy"] else "<p>no strategy</p>",
             _table([[m["strategy"], m["count"], m["first_hseq"], m["action"], m["message"]] for m in r["strategy_errors"]],
                    ["strategy", "count", "first hseq", "on_error", "message"]) if r["strategy_errors"] else "",
             "<h2>plots</h2>"]
    for f in figs:
        parts.append(f"<figure><img alt='{f['name']}' data-figure='{f['name']}' data-points='{f['points']}' "
                     f"data-last='{f['last']!r}' src='data:image/png;base64,{f['png']}'/>"
                     f"<figcaption>{html.escape(f['name'])}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def print_report(r: dict, out=None) -> None:
    out = out or sys.stdout
    w = lambda s="": print(s, file=out)  # noqa: E731
    w(f"session {r['session']} ({r['mode']}, strategy {r['strategy']})  {r['file']}")
    w(f"  orders: " + ", ".join(f"{k} {v:,}" for k, v in r["orders"].items()) + f"; fills {r['fills']:,}")
    for s, d in r["per_instrument"].items():
        w(f"  {s}: {d['fills']:,} fills ({d['maker_fills']:,} maker, {d['taker_fills']:,} taker), bought {d['bought']:g}, "
          f"sold {d['sold']:g}, notional {d['notional']:,.2f}, fees {d['fees']:,.4f}")
    if r.get("venue_fees"):
        w("  fees charged by the venue: " + ", ".join(f"{v} {a or '?'}" for a, v in r["venue_fees"].items()))
    for s, v in r["final"].items():
        w(f"  {s}: final position {v['position']:g}, PnL {v['pnl']:,.4f} (realized {v['realized']:,.4f})")
    w("  latency (µs)   " + "".join(f"{q:>10}" for q in ("n", "p50", "p90", "p99", "max")))
    for k, v in r["latency_ns"].items():
        w(f"    {k:<12} {v['n']:>10,}" + ("".join(f"{v[q] / 1e3:>10.1f}" for q in ("p50", "p90", "p99", "max")) if v["n"] else ""))
    w("  denials: " + (", ".join(f"{k} {v:,}" for k, v in r["denials"].items()) or "none"))
    w("  anomalies: " + (", ".join(f"{k} {v:,}" for k, v in r["anomalies"].items()) or "none"))
    for x in r["per_strategy"]:
        w(f"  strategy {x['name']} ({' '.join(x['instruments'])}): orders {x['orders']:,}, fills {x['fills']:,}, "
          f"denials {x['denials']:,}, errors {x['errors']:,}{' (stopped)' if x['stopped'] else ''}, "
          f"PnL {x['total_pnl']:,.4f} (realized {x['realized_pnl']:,.4f})")
    for m in r["strategy_errors"]:
        w(f"  error in {m['strategy']} x{m['count']:,} (first at hseq {m['first_hseq']:,}, {m['action']}): {m['message']}")


def _cmd_report(args) -> int:
    import os

    if not os.path.exists(args.file):
        print(f"livestack records report: {args.file}: no such file", file=sys.stderr)
        return 2
    r = analyse(args.file, args.maker_bps, args.taker_bps)
    if args.json:
        print(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}, indent=2, default=str))
    else:
        print_report(r)
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(to_html(r))
        print(f"report written to {args.html}")
    return 0


def register(rsub) -> None:
    p = rsub.add_parser("report", help="orders, fills, fees, PnL/position, latency, denials (--html: one file with plots)")
    p.add_argument("file", help="session file (.h5)")
    p.add_argument("--html", metavar="OUT", help="write a self-contained HTML report with embedded PNG plots")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--maker-bps", type=float, default=2.0, help="maker fee in basis points of notional (default 2)")
    p.add_argument("--taker-bps", type=float, default=5.0, help="taker fee in basis points of notional (default 5)")
    p.set_defaults(func=_cmd_report)
