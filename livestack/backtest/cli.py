"""``livestack backtest --data FILE [--strategy NAME] [--config RUN.toml] [--market usdm|spot]
[--records DIR | --no-records] [--no-progress] [--json]``.

Exit codes: 0 done; 2 the input cannot be backtested (a message says why: the capture does not
exist / is for another market / has no snapshot / yields no events, the config is invalid);
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import logging
import sys
import time

log = logging.getLogger(__name__)

EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


def register(subparsers) -> None:
    p = subparsers.add_parser("backtest", help="run the core over a recorded capture with a simulated venue")
    p.add_argument("--data", help="Binance capture (.gz, one '<ns> <json>' a line); default: the config's "
                                  "[venue.options] capture_path")
    p.add_argument("--strategy", help="mm_cy | mm_numba | mm_py | taker_cy | taker_numba | taker_py | none, or your own: "
                                      "package.module:Class or path/file.py|.pyx:Class (docs/strategies.md); "
                                      "default: the config's strategy.name")
    p.add_argument("--config", help="the run config (TOML, the file `livestack run` takes): [[instruments]], [risk], "
                                    "[strategy], [harness] book_top_levels, [venue.options] latencies; what it "
                                    "leaves out gets the market's defaults")
    p.add_argument("--market", choices=["usdm", "spot", "okx", "kraken"],
                   help="market of the capture: Binance usdm or spot, an OKX or a Kraken websocket capture "
                        "(default: detected from it)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--records", metavar="DIR", default=None,
                   help="write the session file DIR/<date>/backtest-<capture>-<strategy>-<HHMMSS>.h5 (records, journal, "
                        "config: what a live run writes; `replay --verify`, `records summary|export|report` take it). "
                        "Default: the config's session.records_dir")
    p.add_argument("--no-records", action="store_true", help="write no session file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")
    p.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")
    p.add_argument("--book-depth", type=int, metavar="N",
                   help="levels per side the strategy context exposes (default: the instrument's book_depth)")
    p.add_argument("--book-top-levels", type=int, metavar="N",
                   help="N of the book_top rows in the session file (default: the config's harness.book_top_levels)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run N times on fresh cores (decode once) and report the warm median events/s too")
    p.set_defaults(func=_cmd)


def _fail(msg: str, code: int = EXIT_INPUT) -> int:
    print(f"livestack backtest: error: {msg}", file=sys.stderr)
    return code


def _cmd(args) -> int:
    from livestack.backtest.session import BacktestError

    try:
        return _run(args)
    except BacktestError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print("livestack backtest: interrupted; no session file written", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args) -> int:
    import pathlib

    from livestack.backtest import summary
    from livestack.backtest import session as bs
    from livestack.feeds.capture import decode_capture
    from livestack.node import config as cfgmod

    if args.data is None:
        args.data, cap_market = bs.capture_of(args.config)
        args.market = args.market or cap_market
        if args.data is None:
            raise bs.BacktestError("no capture to backtest: give --data FILE (or a --config whose [venue.options] "
                                   "has capture_path)")
    l2 = bs.sniff_l2(str(args.data), args.market) if args.market in (None, *bs.L2_MARKETS) else None
    if args.market in bs.L2_MARKETS and l2 is None:
        raise bs.BacktestError(f"capture {args.data}: no {args.market} book or trade message in it")
    info = l2 or bs.sniff_capture(str(args.data))
    market = args.market or info["market"] or "usdm"
    if l2 is None and args.market and info["market"] and args.market != info["market"]:
        raise bs.BacktestError(f"capture {args.data} is a Binance {info['market']} capture (its depth diffs "
                               f"{'carry' if info['market'] == 'usdm' else 'lack'} the 'pu' field), not "
                               f"{args.market}: use --market {info['market']} (or leave --market out)")
    cfg = bs.backtest_config(args.config, args.strategy, market, info["symbol"],
                             bs.l2_defaults(info) if l2 is not None else None)
    if args.book_depth is not None:
        for i in cfg["instruments"]:
            i["book_depth"] = args.book_depth
    if args.book_top_levels is not None:
        cfg["harness"]["book_top_levels"] = args.book_top_levels
    inst = cfgmod.instruments(cfg)[0]
    if info["symbol"] and inst.symbol != info["symbol"]:
        raise bs.BacktestError(f"capture {args.data} is for {info['symbol']}, the config's instrument is "
                               f"{inst.symbol}: fix [[instruments]] symbol")
    strategy = cfg["strategy"]["name"]
    path = None
    if not args.no_records:
        from livestack.records.writer import default_path

        stem = pathlib.Path(args.data).name.split(".")[0]
        records_dir = args.records if args.records is not None else cfg["session"]["records_dir"]
        label = strategy.rpartition(":")[2] or strategy  # a reference: its class name
        name = f"backtest-{stem}-{label}-{time.strftime('%H%M%S')}"
        path = pathlib.Path(default_path(name, records_dir))
        k = 1
        while path.exists() or path.with_name(path.name + ".lock").exists():
            k += 1
            path = pathlib.Path(default_path(f"{name}-{k}", records_dir))
    t0 = time.perf_counter()
    md = decode_capture(args.data, inst, market)
    decode_s = time.perf_counter() - t0
    bs.check_md(md, str(args.data), market, inst.symbol, saw_depth=info["market"] is not None)
    with _Progress(len(md), args) as prog:
        out = bs.run(md, cfg, collect=path is not None, journal=True, progress=prog.update)
    s = summary(out, inst)
    s["decode_s"] = decode_s
    s["market"] = market
    s["strategy"] = strategy
    s.update(_timing(s, md, args, cfg, bs.run))
    if path is not None:
        bs.write_session(path, out, cfg, {"data": str(args.data), "market": market, "strategy": strategy})
        s["records"] = str(path)
    if args.json:
        print(json.dumps(s, indent=1, default=str))
        return 0
    print(f"backtest {args.data} strategy={strategy} market={market} ({inst.symbol})")
    print(f"  events        {s['events']:>12,}  (md {s['md_events']:,}, exec {s['exec_events']:,})")
    print(f"  orders        {s['orders']:>12,}  (new {s['new']:,}, cancel {s['cancels']:,}, replace {s['replaces']:,})")
    print(f"  fills         {s['fills']:>12,}")
    print(f"  denials       {s['denials']:>12,}  {s['denials_by_reason'] or ''}")
    print(f"  anomalies     {s['anomalies']:>12,}  {s['anomalies_by_code'] or ''}")
    print(f"  position      {s['position']:>12}")
    print(f"  PnL           {s['pnl']:>12.2f}  (realized {s['realized_pnl']:.2f}, unrealized {s['unrealized_pnl']:.2f}; quote currency)")
    print(f"  events/s      {s['events_per_s']:>12,.0f}  ({s['timed']})")
    if s["repeat"] > 1:
        print(f"  events/s warm {s['events_per_s_warm_median']:>12,.0f}  (median of {s['repeat'] - 1} warm passes after "
              f"the cold one; {min(s['wall_s_runs'][1:]):.3f}-{max(s['wall_s_runs'][1:]):.3f} s each)")
    if path is not None:
        print(f"  records       {path}")
    if s["orders"] == 0 and strategy != "none":
        print(f"  note: the strategy sent no order (denials: {s['denials_by_reason'] or 'none'})", file=sys.stderr)
    return 0


class _Progress:
    """A rich progress bar over the market records delivered: events/s and ETA (stderr)."""

    def __init__(self, total: int, args):
        self.total = total
        self.show = not args.no_progress and (args.progress or sys.stderr.isatty())
        self.bar = None
        self.task = None

    def __enter__(self):
        if self.show:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.bar = Progress(TextColumn("backtest"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]} events/s"), TextColumn("ETA"), TimeRemainingColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True, force_terminal=bool(self.show)),
                                transient=False)
            self.bar.__enter__()
            self.task = self.bar.add_task("md", total=self.total, rate="-")
            self.t0 = time.perf_counter()
        return self

    def update(self, md_done: int, inputs: int) -> None:
        if self.bar is None:
            return
        dt = time.perf_counter() - self.t0
        self.bar.update(self.task, completed=md_done, rate=f"{inputs / dt:,.0f}" if dt > 0 else "-")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


def _timing(s: dict, md, args, cfg, run) -> dict:
    """What the events/s figure timed, and with ``--repeat N`` the median of the N-1 warm passes
    (each on a fresh core over the same decoded records; the first pass pays JIT/cache warm-up)."""
    import statistics

    walls = [s["wall_s"]] + [run(md, cfg, collect=False, journal=False)["wall_s"]
                             for _ in range(max(0, args.repeat - 1))]
    t = {"repeat": max(1, args.repeat), "wall_s_runs": walls,
         "timed": f"cold single pass of core + simulated venue, {walls[0]:.3f} s; decode {s['decode_s']:.2f} s and "
                  "venue timeline setup not counted"
                  + ("" if args.no_records else "; inputs and outputs collected for the session file")
                  + ("" if args.repeat > 1 else "; --repeat N for a warm median")}
    if len(walls) > 1:
        t["events_per_s_warm_median"] = s["events"] / statistics.median(walls[1:])
    return t
