"""``livestack top``: a live terminal dashboard over the shared-memory telemetry block (rich).

Reads snapshots lock-free at ``--interval`` and shows: trading state and kill latch, per-stage
latency quantiles, input and order rates, orders by status and denials by reason, positions and
PnL, per strategy (orders, fills, denials, errors, PnL summed over its instruments), ring fill levels
and process health. ``--once`` renders a single frame (two snapshots
``--interval`` apart, so rates are real) and exits.
"""

from __future__ import annotations

import time

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from livestack.telemetry.snapshot import rates

_STATE_STYLE = {"ACTIVE": "bold green", "REDUCING": "bold yellow", "HALTED": "bold red", "STOPPED": "bold white"}


def fmt_ns(ns) -> str:
    if ns is None:
        return "-"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"


def fmt_rate(r) -> str:
    if r is None:
        return "-"
    if r >= 1e6:
        return f"{r / 1e6:.2f}M/s"
    if r >= 1e3:
        return f"{r / 1e3:.1f}k/s"
    return f"{r:.0f}/s"


def _fixed(v: int, decimals: int) -> str:
    if decimals <= 0:
        return str(v)
    s = f"{abs(v):0{decimals + 1}d}"
    return ("-" if v < 0 else "") + s[:-decimals] + "." + s[-decimals:]


def _bar(ratio: float, width: int = 20) -> Text:
    n = max(0, min(width, round(ratio * width)))
    style = "green" if ratio < 0.5 else "yellow" if ratio < 0.9 else "red"
    return Text("█" * n + "·" * (width - n), style=style)


def stack_running(block, stack: dict | None) -> bool:
    """Whether the stack behind ``block`` still runs: its registry entry (``livestack ls``) is live,
    else the supervisor pid in the block's name is alive."""
    from livestack.ipc import shm
    from livestack.telemetry.snapshot import _TEL_RE

    if stack is not None:
        from livestack.node import registry

        return registry.alive(stack)
    m = _TEL_RE.match(str(getattr(block, "name", "")))
    return True if m is None else shm.pid_alive(int(m.group(1)))


def render(snap: dict, prev: dict | None = None, width: int = 200, stack: dict | None = None,
           stopped: bool = False):
    """One dashboard frame (a rich renderable) from a snapshot and, for rates, the previous one.

    Tables sit two abreast on a terminal at least 150 columns wide, one under another otherwise.
    """
    g = snap["gauges"]
    c = snap["counters"]
    r = rates(prev, snap)
    state = "STOPPED" if stopped else snap["trading_state"]
    head = Text()
    head.append("livestack top  ", style="bold")
    head.append(f"{snap['name']}  ")
    head.append(f" {state} ", style=_STATE_STYLE.get(state, "bold") + " reverse")
    if g["kill_latched"]:
        head.append("  KILL LATCHED", style="bold red blink")
    if stopped:
        head.append("  the stack has ended (last values)", style="bold")
    else:
        head.append(f"  session {'active' if g['session_active'] else 'stopped'}")
    head.append(f"  hseq {g['hseq']:,}  config v{g['config_version']}  open orders {g['open_orders']}")

    lat = Table(title="latency by stage", title_justify="left", expand=False)
    cols = ("stage", "count", "p50", "p90", "p99", "p99.9", "max", "mean")
    if width < 100:  # narrow terminal: the columns that matter most
        cols = ("stage", "count", "p50", "p99", "max")
    for col in cols:
        lat.add_column(col, justify="right" if col != "stage" else "left", no_wrap=True)
    for name, h in snap["histograms"].items():
        cells = {"stage": name, "count": f"{h['count']:,}", "p50": fmt_ns(h["p50_ns"]), "p90": fmt_ns(h["p90_ns"]),
                 "p99": fmt_ns(h["p99_ns"]), "p99.9": fmt_ns(h["p999_ns"]), "max": fmt_ns(h["max_ns"]),
                 "mean": fmt_ns(h["mean_ns"])}
        lat.add_row(*(cells[c] for c in cols))

    thr = Table(title="throughput", title_justify="left")
    thr.add_column("counter", no_wrap=True)
    thr.add_column("total", justify="right")
    thr.add_column("rate", justify="right")
    for name in ("events", "md_events", "exec_events", "control_events", "timer_events", "orders_new",
                 "orders_cancel", "orders_replace", "fills", "denials", "anomalies", "records",
                 "feed_gaps", "ring_overflows", "events_dropped", "errors"):
        style = "red" if name in ("anomalies", "feed_gaps", "ring_overflows", "events_dropped", "errors") and c[name] else None
        thr.add_row(name, f"{c[name]:,}", fmt_rate(r.get(name)) if r else "-", style=style)

    codes = Table(title="orders by status, denials", title_justify="left")
    codes.add_column("what", no_wrap=True)
    codes.add_column("count", justify="right")
    for k, v in snap["order_states"].items():
        if v and k != "NONE":
            codes.add_row(f"order {k.lower()}", f"{v:,}")
    for k, v in snap["denials"].items():
        if v and k != "NONE":
            codes.add_row(f"denied {k.lower()}", f"{v:,}", style="yellow")
    for k, v in snap["anomalies"].items():
        if v and k != "NONE":
            codes.add_row(f"anomaly {k.lower()}", f"{v:,}", style="red")

    from livestack.units import currencies

    pos = Table(title="positions and PnL", title_justify="left")
    for col in ("instrument", "net qty", "avg price", "mark", "realized PnL", "unrealized PnL"):
        pos.add_column(col, justify="right" if col != "instrument" else "left")
    for p in snap["positions"]:
        pd, qd = p["price_decimals"], p["qty_decimals"]
        base, quote = currencies(p["symbol"] or "")
        avg = _fixed(round(p["cost"] / p["net_qty"]), pd) if p["net_qty"] else "-"
        scale = 10 ** (pd + qd)
        mark = f"{_fixed(p['mark_price'], pd)} {quote}" if p["mark_price"] else "- (no book yet)"
        pos.add_row(p["symbol"] or str(p["instrument"]), f"{_fixed(p['net_qty'], qd)} {base}", avg, mark,
                    f"{p['realized_pnl'] / scale:,.2f} {quote}", f"{p['unrealized_pnl'] / scale:,.2f} {quote}",
                    style="red" if p["realized_pnl"] + p["unrealized_pnl"] < 0 else None)

    strat = None
    if snap.get("strategies"):
        from livestack.strategies.telemetry import per_strategy

        strat = strategy_table(per_strategy(snap["positions"], snap["strategies"]),
                               "strategies (sums over each one's instruments; PnL in quote currency)")

    rings = Table(title="rings", title_justify="left")
    for col in ("ring", "fill", "capacity", "level", "full"):
        rings.add_column(col, justify="right" if col not in ("ring", "level") else "left")
    for x in snap["rings"]:
        rings.add_row(x["name"], f"{x['fill']:,}", f"{x['capacity']:,}", _bar(x["fill_ratio"]), f"{x['overflows']:,}",
                      style="red" if x["overflows"] else None)
    rings.add_row("writer lag", f"{g['writer_lag_records']:,}", "", "", "")

    procs = Table(title="processes", title_justify="left")
    for col in ("process", "pid", "health", "heartbeat", "errors", "lag"):
        procs.add_column(col, justify="right" if col not in ("process", "health") else "left")
    seen = set()
    for p in snap["processes"]:
        seen.add(p["pid"])
        health = Text("ok", style="green") if p["alive"] else Text("DEAD" if not p["running"] else "STALE", style="bold red")
        if stopped:
            health = Text("STOPPED", style="bold")
        procs.add_row(p["name"], str(p["pid"]), health, f"{p['heartbeat_age_s']:.1f} s ago", f"{p['errors']:,}",
                      fmt_ns(p["lag_ns"]) if p["lag_ns"] else "-")
    if stack is not None:  # every process of the stack (livestack ls), those without a telemetry slot too
        from livestack.ipc import shm

        for name, pid in {"supervisor": stack.get("supervisor_pid"), **stack.get("pids", {})}.items():
            if pid in seen or not pid:
                continue
            up = shm.pid_alive(int(pid)) and not stopped
            procs.add_row(name, str(pid), Text("running", style="green") if up else Text("STOPPED", style="bold"),
                          "-", "-", "-")

    pairs = ((lat, thr), (pos, codes), (rings, procs))
    extra = [strat] if strat is not None else []
    if width < 150:
        return Group(head, Text(""), *(t for pair in pairs for t in pair), *extra)
    rows = []
    for a, b in pairs:
        grid = Table.grid(padding=(0, 2))
        grid.add_row(a, b)
        rows.append(grid)
    return Group(head, Text(""), *rows[:2], *extra, *rows[2:])


def strategy_table(rows: list[dict], title: str) -> Table:
    """Per strategy (``livestack.strategies.telemetry.per_strategy`` rows): its instruments, orders
    sent, fills, denials, errors (red; "stopped" once its on_error policy took it out) and PnL summed
    over its instruments. ``top`` and ``ctl positions`` show it."""
    t = Table(title=title, title_justify="left")
    for col in ("strategy", "instruments", "orders", "fills", "denials", "errors", "realized PnL", "unrealized PnL",
                "PnL"):
        t.add_column(col, justify="left" if col in ("strategy", "instruments") else "right")
    for r in rows:
        err = Text(f"{r['errors']:,}" + (" stopped" if r["stopped"] else ""), style="bold red" if r["errors"] else "")
        t.add_row(r["name"], " ".join(r["instruments"]), f"{r['orders_sent']:,}", f"{r['fills']:,}",
                  f"{r['denials']:,}", err, f"{r['realized_pnl']:,.2f}", f"{r['unrealized_pnl']:,.2f}",
                  f"{r['pnl']:,.2f}", style="red" if r["pnl"] < 0 else None)
    return t


def run(block, interval: float = 1.0, once: bool = False, console: Console | None = None,
        max_frames: int | None = None, stack: dict | None = None) -> int:
    """Show the dashboard until Ctrl-C (or one frame with ``once``). When the stack ends, the last
    frame says STOPPED and top returns."""
    console = console or Console()
    prev = block.snapshot()
    if once:
        time.sleep(interval)
        console.print(render(block.snapshot(), prev, console.width, stack, not stack_running(block, stack)))
        return 0
    from rich.live import Live

    frames = 0
    try:
        with Live(render(prev, None, console.width, stack), console=console,
                  refresh_per_second=max(1, int(1 / max(interval, 0.05))), screen=False) as live:
            while max_frames is None or frames < max_frames:
                time.sleep(interval)
                cur = block.snapshot()
                stopped = not stack_running(block, stack)
                live.update(render(cur, prev, console.width, stack, stopped))
                prev = cur
                frames += 1
                if stopped:
                    break
    except KeyboardInterrupt:
        pass
    return 0
