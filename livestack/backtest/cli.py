"""``livestack backtest --data FILE --strategy NAME [--config FILE.toml] [--market usdm|spot]
[--records DIR] [--book-depth N] [--book-top-levels N]``."""

from __future__ import annotations

import json
import time


def register(subparsers) -> None:
    p = subparsers.add_parser("backtest", help="run the core over a recorded capture with a simulated venue")
    p.add_argument("--data", required=True, help="Binance capture (.gz, one '<ns> <json>' a line)")
    p.add_argument("--strategy", required=True,
                   help="mm_cy | mm_numba | mm_py | taker_cy | taker_numba | taker_py | none, or your own: "
                        "package.module:Class or path/file.py|.pyx:Class (docs/strategies.md)")
    p.add_argument("--config", help="TOML with [instrument], [risk], [strategy.params], [core]")
    p.add_argument("--market", choices=["usdm", "spot"], default="usdm")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--records", metavar="DIR",
                   help="write the session file DIR/backtest-<capture>-<strategy>.h5: the core's output records "
                        "(order states, fills, positions, denials, anomalies, book_top ...) as a live run's")
    p.add_argument("--book-depth", type=int, metavar="N",
                   help="levels per side every instrument's strategy context exposes (default: the config's)")
    p.add_argument("--book-top-levels", type=int, default=5, metavar="N",
                   help="N of the book_top rows written with --records (default 5; 0 = none)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run N times on fresh cores (decode once) and report the warm median events/s too")
    p.set_defaults(func=_cmd)


def _cmd(args) -> int:
    from livestack.backtest import instrument_for, load_config, run_backtest, summary
    from livestack.feeds.capture import decode_capture

    from livestack.strategies import loader

    try:
        cfg = load_config(args.config) if args.config else {}
        # the strategy loads (imports / compiles, params convert) before the capture is decoded
        loader.load(loader.normalize(args.strategy), cfg.get("strategy", {}).get("params") or None,
                    instrument_for(args.market, cfg), on_error=cfg.get("strategy", {}).get("on_error"))
    except (ValueError, OSError) as e:
        print(f"livestack backtest: {e}", file=__import__("sys").stderr)
        return 2
    core_cfg = dict(cfg.get("core", {}))
    if args.book_depth is not None:
        core_cfg["book_depth"] = args.book_depth
    if args.records:
        core_cfg["book_top_levels"] = args.book_top_levels
    cfg = dict(cfg, core=core_cfg)
    inst = instrument_for(args.market, cfg)
    path = None
    if args.records:
        import pathlib

        stem = pathlib.Path(args.data).name.split(".")[0]
        label = args.strategy.rpartition(":")[2] or args.strategy  # a reference: its class name
        path = pathlib.Path(args.records) / f"backtest-{stem}-{label}.h5"
        if path.exists():
            print(f"backtest: {path} exists; remove it or choose another --records DIR")
            return 2
    t0 = time.perf_counter()
    md = decode_capture(args.data, inst, args.market)
    decode_s = time.perf_counter() - t0
    out = run_backtest(md, args.strategy, inst, cfg, collect=path is not None)
    s = summary(out, inst)
    s["decode_s"] = decode_s
    s.update(_timing(s, md, args, inst, cfg, run_backtest))
    if path is not None:
        from livestack.backtest import write_session

        write_session(path, out, inst, cfg, {"data": str(args.data), "strategy": args.strategy,
                                             "market": args.market})
        s["records"] = str(path)
    if args.json:
        print(json.dumps(s, indent=1))
        return 0
    print(f"backtest {args.data} strategy={args.strategy} market={args.market} ({inst.symbol})")
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
    return 0


def _timing(s: dict, md, args, inst, cfg, run_backtest) -> dict:
    """What the events/s figure timed, and with ``--repeat N`` the median of the N-1 warm passes
    (each on a fresh core over the same decoded records; the first pass pays JIT/cache warm-up)."""
    import statistics

    walls = [s["wall_s"]] + [run_backtest(md, args.strategy, inst, cfg, collect=False)["wall_s"]
                             for _ in range(max(0, args.repeat - 1))]
    t = {"repeat": max(1, args.repeat), "wall_s_runs": walls,
         "timed": f"cold single pass of core + simulated venue, {walls[0]:.3f} s; decode {s['decode_s']:.2f} s and "
                  "venue timeline setup not counted" + ("; outputs collected for --records" if args.records else "")
                  + ("" if args.repeat > 1 else "; --repeat N for a warm median")}
    if len(walls) > 1:
        t["events_per_s_warm_median"] = s["events"] / statistics.median(walls[1:])
    return t
