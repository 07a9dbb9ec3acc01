"""``livestack records summary FILE`` (and ``livestack replay FILE`` when the core is built)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np


def summarize(path: str, rows: int = 1 << 20) -> dict:
    """The summary of a session file as a plain dict (what ``records summary --json`` prints).

    Streams: every dataset is read in slices of at most ``rows`` rows, so a session of hundreds
    of millions of records is summarized in bounded memory (the seq check holds a byte per seq).
    """
    from livestack.records.reader import open_session

    with open_session(path) as s:
        a = s.attrs
        out: dict = {
            "file": path,
            "session": a.get("session", ""),
            "host": a.get("host", ""),
            "livestack_version": a.get("livestack_version", ""),
            "schema_version": a.get("schema_version", 0),
            "start_time": a.get("start_time", ""),
            "stop_time": a.get("stop_time", "") or "(none: live, or the writer did not close the file)",
            "writer_starts": a.get("writer_starts", 0),
            "mode": a.get("mode", ""),          # live | backtest (session_identity)
            "strategy": _strategy_label(a.get("strategy", "")),
        }
        out["seq"] = s.seq_report()
        out["end"] = s.end_report(out["seq"])
        counts = s.counts()
        out["counts"] = {k: v for k, v in counts.items() if v}
        ts_lo, ts_hi = None, None
        for k in s.datasets():
            ds = s.file[k]
            if ds.shape[0] and "ts" in ds.dtype.names:  # (not the journal index: its inputs are in their kinds)
                lo, hi = int(ds[0]["ts"]), int(ds[-1]["ts"])
                ts_lo = lo if ts_lo is None else min(ts_lo, lo)
                ts_hi = hi if ts_hi is None else max(ts_hi, hi)
        if ts_lo is not None:
            import pandas as pd

            out["first_record"] = str(pd.Timestamp(ts_lo, unit="ns", tz="UTC"))
            out["last_record"] = str(pd.Timestamp(ts_hi, unit="ns", tz="UTC"))
            out["span_s"] = (ts_hi - ts_lo) / 1e9
        fills: dict[str, dict] = {}
        if counts.get("fill"):
            for f in s.iter_frames("fill", rows):
                for sym, g in f.groupby("symbol", sort=True):
                    d = fills.setdefault(sym, {"fills": 0, "buy_qty": 0.0, "sell_qty": 0.0, "notional": 0.0})
                    d["fills"] += int(len(g))
                    d["buy_qty"] += float(g.qty[g.side == "BUY"].sum())
                    d["sell_qty"] += float(g.qty[g.side == "SELL"].sum())
                    d["notional"] += float((g.price * g.qty).sum())
                    d["position"] = float(g.position.iloc[-1])
                    d["realized_pnl"] = float(g.realized_pnl.iloc[-1])
        out["fills"] = dict(sorted(fills.items()))
        pnl: dict[str, dict] = {}
        if counts.get("position"):
            for p in s.iter_frames("position", rows):
                for sym, g in p.groupby("symbol", sort=True):
                    last = g.iloc[-1]
                    pnl[sym] = {"net_qty": float(last.net_qty), "realized_pnl": float(last.realized_pnl),
                                "unrealized_pnl": float(last.unrealized_pnl),
                                "total_pnl": float(last.realized_pnl + last.unrealized_pnl)}
        else:
            for sym, fi in fills.items():
                pnl[sym] = {"net_qty": fi["position"], "realized_pnl": fi["realized_pnl"]}
        out["pnl"] = dict(sorted(pnl.items()))
        from livestack.records import strategies

        out["strategies"], out["strategy_errors"] = strategies.summarize(s, out["pnl"], rows)
        out["denials"] = _enum_counts(s, "denial", "reason", "DenyReason", rows) if counts.get("denial") else {}
        out["anomalies"] = (_enum_counts(s, "anomaly", "code", "Anomaly", rows)
                            if counts.get("anomaly") else {})
        if counts.get("trading_state"):
            n = counts["trading_state"]
            t = s.tail("trading_state")
            out["trading_state"] = {"transitions": int(n), "final": str(t.state.iloc[-1]),
                                    "kill_latched": bool(t.kill_latched.iloc[-1])}
        if isinstance(a.get("writer_counters"), dict):
            out["writer_counters"] = a["writer_counters"]
    return out


def _strategy_label(ident) -> str:
    """The session's strategy as one line: the SDK identity's ref(s), else the stored name."""
    if isinstance(ident, (bytes, str)):
        try:
            ident = json.loads(ident)
        except ValueError:
            return ident.decode() if isinstance(ident, bytes) else ident
    if isinstance(ident, dict):
        return str(ident.get("ref", ""))
    if isinstance(ident, list):
        return ", ".join(str(i.get("ref", "")) if isinstance(i, dict) else str(i) for i in ident)
    return str(ident)


def _enum_counts(s, name: str, field: str, enum_name: str, rows: int) -> dict[str, int]:
    """Occurrences of each value of an enum field over a whole dataset, most frequent first.

    A dataset with a ``count`` field (DENIAL v2: a run of repeats written as one record) counts
    each row ``count`` times.
    """
    from livestack.schema import ENUMS

    total = np.zeros(1 << 16, dtype=np.int64)
    weighted = "count" in (s.file[name].dtype.names or ())
    for v in s.iter_raw(name, rows, field=field if not weighted else None):
        if weighted:
            v, w = v[field], v["count"].astype(np.int64)
            total += np.bincount(v.astype(np.int64), weights=w, minlength=1 << 16)[:1 << 16].astype(np.int64)
        else:
            total += np.bincount(v.astype(np.int64), minlength=1 << 16)[:1 << 16]
    names = {m.value: m.name for m in ENUMS[enum_name]}
    names.setdefault(0, "NONE")
    found = [(names.get(int(k), f"?{int(k)}"), int(total[k])) for k in np.flatnonzero(total)]
    return dict(sorted(found, key=lambda kv: (-kv[1], kv[0])))


def _table(rows: list[list], head: list[str]) -> str:
    cells = [head] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join("  " + ln for ln in lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:,.8f}".rstrip("0").rstrip(".") if v != int(v) else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def print_summary(d: dict, out=None) -> None:
    out = out or sys.stdout  # looked up per call (a default bound at import goes stale under capture)
    w = lambda s="": print(s, file=out)  # noqa: E731
    w(f"session {d['session']}  ({d['file']})")
    w(f"  host {d['host']}  livestack {d['livestack_version']}  schema v{d['schema_version']}  "
      f"writer starts {d['writer_starts']}")
    if d.get("mode") or d.get("strategy"):
        w(f"  {d.get('mode') or 'session'} of strategy {d.get('strategy') or '?'}")
    w(f"  started {d['start_time']}   stopped {d['stop_time']}")
    if "first_record" in d:
        w(f"  records from {d['first_record']} to {d['last_record']} ({d['span_s']:.3f} s)")
    q = d["seq"]
    e = d.get("end") or {}
    verdict = "contiguous, nothing lost" if q["contiguous"] else (
        f"NOT CONTIGUOUS: {q['missing']:,} missing, {q['duplicates']:,} duplicated")
    if q["contiguous"] and e.get("missing_tail"):
        verdict = "contiguous up to a MISSING TAIL"
    w(f"  record seq {q['first']:,}..{q['last']:,}: {q['records']:,} records, {verdict}")
    w("  " + _end_line(q, e))
    w()
    w("records per kind")
    w(_table([[k, v] for k, v in d["counts"].items()], ["kind", "records"]))
    if d["fills"]:
        w()
        w("fills")
        w(_table([[s, f["fills"], f["buy_qty"], f["sell_qty"], f["notional"], f["position"]]
                  for s, f in d["fills"].items()], ["instrument", "fills", "bought", "sold", "notional", "position"]))
    if d["pnl"]:
        w()
        w("PnL per instrument")
        rows = [[s, p.get("net_qty", 0.0), p.get("realized_pnl", 0.0), p.get("unrealized_pnl", 0.0),
                 p.get("total_pnl", p.get("realized_pnl", 0.0))] for s, p in d["pnl"].items()]
        w(_table(rows, ["instrument", "position", "realized", "unrealized", "total"]))
    if d.get("strategies"):
        w()
        w("per strategy (PnL in quote currency, summed over its instruments)")
        rows = [[r["name"], " ".join(r["instruments"]), r["orders"], r["fills"], r["denials"],
                 r["errors"] if not r["stopped"] else f"{r['errors']:,} (stopped)", r["realized_pnl"],
                 r["unrealized_pnl"], r["total_pnl"]] for r in d["strategies"]]
        w(_table(rows, ["strategy", "instruments", "orders", "fills", "denials", "errors", "realized",
                        "unrealized", "total"]))
    if d.get("strategy_errors"):
        w()
        w("strategy errors (ANOMALY_TEXT: the message of each STRATEGY_ERROR)")
        w(_table([[m["strategy"], m["count"], m["first_hseq"], m["action"], m["message"]]
                  for m in d["strategy_errors"]], ["strategy", "count", "first hseq", "on_error", "message"]))
    w()
    w("denials by reason" + ("" if d["denials"] else ": none"))
    if d["denials"]:
        w(_table([[k, v] for k, v in d["denials"].items()], ["reason", "count"]))
    w("anomalies" + ("" if d["anomalies"] else ": none"))
    if d["anomalies"]:
        w(_table([[k, v] for k, v in d["anomalies"].items()], ["code", "count"]))
    if "trading_state" in d:
        t = d["trading_state"]
        w(f"trading state: {t['transitions']} transitions, final {t['final']}"
          + (" (kill latched)" if t["kill_latched"] else ""))


def _end_line(q: dict, e: dict) -> str:
    """Where the file ends, against where the harness ended (the writer's stamps at close)."""
    if not e:
        return "end: unknown"
    where = f"file ends at record seq {q['last']:,}"
    if e.get("end_reason") == "disk_full":
        lost = e.get("records_lost_disk_full", 0)
        return (f"end: THE RECORDS DISK FILLED: {where}; the writer closed the file there"
                + (f" (the harness had made {e['harness_last_seq']:,})" if e.get("known") else "")
                + (f"; {lost:,} later records dropped" if lost else ""))
    if not e.get("known"):
        return (f"end: {where}; the writer did not close the file: whether a tail is missing is unknown"
                if not e.get("closed") else f"end: {where} (this file does not say where the harness ended)")
    if e.get("missing_tail"):
        return (f"end: MISSING TAIL: {where}, the harness recorded up to {e['harness_last_seq']:,}: "
                f"{e['missing_tail']:,} records missing")
    return f"end: {where}, where the harness ended"


def _cmd_summary(args) -> int:
    d = summarize(args.file)
    if args.json:
        print(json.dumps(d, indent=2, default=str))
    else:
        print_summary(d)
    ok = (d["seq"]["contiguous"] or d["seq"]["records"] == 0) and not d["end"]["missing_tail"]
    return 0 if ok else 1


def register(subparsers) -> None:
    rec = subparsers.add_parser("records", help="inspect session record files (HDF5)")
    rsub = rec.add_subparsers(dest="records_command", metavar="ACTION")
    summ = rsub.add_parser("summary", help="counts per kind, fills, PnL, per-strategy figures and errors, denials, "
                                           "anomalies, session times")
    summ.add_argument("file", help="session file (.h5)")
    summ.add_argument("--json", action="store_true", help="print JSON instead of tables")
    summ.set_defaults(func=_cmd_summary)
    from livestack.records import export, report

    export.register(rsub)
    report.register(rsub)
    from livestack.records import jetstream

    jetstream.register_pull(rsub)  # obs: `records pull SESSION --from nats://... --out FILE`
    rec.set_defaults(func=lambda a: (rec.print_help(), 2)[1])
    try:
        from livestack.records import replay
    except ImportError:
        return
    replay.register(subparsers)
