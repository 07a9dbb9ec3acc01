"""Peers side by side: the same real capture through livestack's core, hftbacktest and
NautilusTrader's BacktestEngine, with no strategy and with a comparable market maker, in one run,
interleaved (every engine once per round, so a noisy neighbour spreads over all of them), median
of --repeat rounds.

    capture (Binance USD-M BTCUSDT, 93,954 websocket messages)
      ├─ livestack: decode_capture -> 64-byte records -> run_backtest (core + in-process matching
      │    venue, exec events fed back): strategy "none" | "mm_cy" (Cython market maker)
      ├─ hftbacktest: binancefutures.convert -> event array -> HashMapMarketDepthBacktest driven
      │    from numba, woken on every feed event (wait_next_feed): empty body | a market maker
      │    (mid +- 2 ticks, requote when 2 ticks off, max position 50 lots, GTX limit orders)
      └─ NautilusTrader: OrderBookDelta (L2_MBP) + TradeTick objects -> BacktestEngine.run():
           no strategy | the same market maker as a Python Strategy (it cannot be compiled)

Decoding/conversion is done once, before timing, for every engine; each timed run builds a fresh
engine (not timed) and times only its run over the whole capture. Each engine counts events its own
way (livestack: md records incl. the 66k bookTicker BBOs the peers are not given + exec events;
hftbacktest: event rows, one per level update/trade, some twice after its exchange/local
reordering; Nautilus: data objects, one per level update/trade), so the table prints each engine's
event count, events/s, and the ratio of wall times over the same capture. Strategy calls differ too
(printed): livestack's core calls the strategy once per input message (~97k), Nautilus on every book
delta (~446k), hftbacktest on every wait_next_feed wakeup (one per feed timestamp, ~31k) - fewer
calls favour hftbacktest, more calls weigh on Nautilus.

    pip install -e '.[peers]'     # hftbacktest, nautilus_trader
    .venv/bin/python bench/bench_peers.py [--data PATH] [--repeat 3] [--skip nautilus]

A peer that is not installed or cannot be imported is skipped with a message saying so.
Prints a table and writes bench/results/peers.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pathlib
import statistics
import sys
import time
import traceback

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine, table, write_result  # noqa: E402

DATA = (pathlib.Path(os.environ.get("LIVESTACK_DATA", ROOT.parent / "shared" / "data"))
        / "binance" / "usdm-btcusdt-20240808.gz")
TICK, LOT = 0.1, 0.001                       # BTCUSDT USD-M
HALF_SPREAD, REQUOTE, MAX_POS, QTY_LOTS = 2, 2, 50, 10   # livestack's mm defaults (ticks / lots)


# ---------------------------------------------------------------------------------------- livestack
class Livestack:
    name = "livestack"

    def __init__(self, path):
        from livestack.backtest import instrument_for, run_backtest
        from livestack.feeds.capture import decode_capture

        self.inst = instrument_for("usdm", {})
        self.md = decode_capture(str(path), self.inst, "usdm")
        self._run = run_backtest
        self.modes = {"none": "none", "mm": "mm_cy"}
        for s in self.modes.values():  # warm up: imports, first-call costs
            run_backtest(self.md[:1000], s, self.inst, {}, collect=False)

    def run(self, mode):
        out = self._run(self.md, self.modes[mode], self.inst, {}, collect=False)
        c = out["counters"]
        return out["wall_s"], {"events": int(out["inputs"]), "md_events": int(out["md_events"]),
                               "exec_events": int(out["exec_events"]), "orders": int(c["orders_sent"]),
                               "fills": int(c["fills"]),
                               "wakeups": int(c["strategy_calls"]) if self.modes[mode] != "none" else 0}


# -------------------------------------------------------------------------------------- hftbacktest
def _hbt_kernels():
    from numba import njit

    from hftbacktest import GTX, LIMIT

    @njit
    def no_strategy(hbt):
        n = 0
        while True:
            r = hbt.wait_next_feed(False, 3_600_000_000_000)
            if r != 2 and r != 0:
                break
            n += 1
        return n

    @njit
    def market_maker(hbt, half_spread, requote, max_pos, qty_lots):
        n = 0
        oid = 0
        bid_id = -1
        ask_id = -1
        lot = hbt.depth(0).lot_size
        while True:
            r = hbt.wait_next_feed(True, 3_600_000_000_000)
            if r != 2 and r != 3 and r != 0:
                break
            n += 1
            d = hbt.depth(0)
            bb = d.best_bid_tick
            ba = d.best_ask_tick
            if ba <= bb or bb <= 0:
                continue
            hbt.clear_inactive_orders(0)
            orders = hbt.orders(0)
            pos = hbt.position(0) / lot
            tb = (bb + ba) // 2 - half_spread
            ta = (bb + ba + 1) // 2 + half_spread
            if bid_id >= 0 and bid_id in orders:
                o = orders.get(bid_id)
                if abs(o.price_tick - tb) >= requote or pos >= max_pos:
                    hbt.cancel(0, bid_id, False)
                    bid_id = -1
            elif pos + qty_lots <= max_pos:
                oid += 1
                bid_id = oid
                hbt.submit_buy_order(0, bid_id, tb * d.tick_size, qty_lots * lot, GTX, LIMIT, False)
            if ask_id >= 0 and ask_id in orders:
                o = orders.get(ask_id)
                if abs(o.price_tick - ta) >= requote or pos <= -max_pos:
                    hbt.cancel(0, ask_id, False)
                    ask_id = -1
            elif pos - qty_lots >= -max_pos:
                oid += 1
                ask_id = oid
                hbt.submit_sell_order(0, ask_id, ta * d.tick_size, qty_lots * lot, GTX, LIMIT, False)
        return n * 1_000_000 + oid  # wakeups, orders submitted

    return no_strategy, market_maker


class Hftbacktest:
    name = "hftbacktest"

    def __init__(self, path, tmp):
        import hftbacktest
        from hftbacktest.data.utils import binancefutures

        self.version = hftbacktest.__version__
        self.events = binancefutures.convert(str(path), buffer_size=2_000_000)
        self.kernels = _hbt_kernels()
        self.run("none", warm=True)
        self.run("mm", warm=True)

    def _build(self):
        from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

        asset = (BacktestAsset().data(self.events).linear_asset(1.0).constant_order_latency(1_000_000, 1_000_000)
                 .risk_adverse_queue_model().no_partial_fill_exchange().trading_value_fee_model(-0.00005, 0.0007)
                 .tick_size(TICK).lot_size(LOT).last_trades_capacity(0))
        return HashMapMarketDepthBacktest([asset])

    def run(self, mode, warm=False):
        hbt = self._build()
        t0 = time.perf_counter()
        if mode == "none":
            n, orders = self.kernels[0](hbt), 0
        else:
            v = self.kernels[1](hbt, HALF_SPREAD, REQUOTE, MAX_POS, QTY_LOTS)
            n, orders = divmod(v, 1_000_000)
        wall = time.perf_counter() - t0
        hbt.close()
        return wall, {"events": int(len(self.events)), "wakeups": int(n), "orders": int(orders)}


# ---------------------------------------------------------------------------------- NautilusTrader
def _nautilus_data(path, inst):
    """OrderBookDeltas (L2, one delta per level update; the REST snapshot as CLEAR + adds) and
    TradeTicks from the raw capture, in capture order, timestamped with the local receive ns."""
    from nautilus_trader.model.data import BookOrder, OrderBookDelta, TradeTick
    from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
    from nautilus_trader.model.identifiers import TradeId

    iid = inst.id
    last = RecordFlag.F_LAST
    px, qty = inst.make_price, inst.make_qty
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            ts_s, _, body = line.partition(" ")
            ts = int(ts_s)
            msg = json.loads(body)
            d = msg.get("data", msg)
            if "lastUpdateId" in d:  # REST snapshot
                rows = [(OrderSide.BUY, p, q) for p, q in d["bids"]] + [(OrderSide.SELL, p, q) for p, q in d["asks"]]
                out.append(OrderBookDelta.clear(iid, 0, ts, ts))
                for k, (side, p, q) in enumerate(rows):
                    out.append(OrderBookDelta(iid, BookAction.ADD, BookOrder(side, px(float(p)), qty(float(q)), 0),
                                              last if k == len(rows) - 1 else 0, 0, ts, ts))
                continue
            e = d.get("e")
            if e == "depthUpdate":
                rows = [(OrderSide.BUY, p, q) for p, q in d["b"]] + [(OrderSide.SELL, p, q) for p, q in d["a"]]
                for k, (side, p, q) in enumerate(rows):
                    qf = float(q)
                    out.append(OrderBookDelta(iid, BookAction.DELETE if qf == 0 else BookAction.UPDATE,
                                              BookOrder(side, px(float(p)), qty(qf), 0),
                                              last if k == len(rows) - 1 else 0, 0, ts, ts))
            elif e == "trade" and d.get("X", "MARKET") == "MARKET":
                out.append(TradeTick(iid, px(float(d["p"])), qty(float(d["q"])),
                                     AggressorSide.SELLER if d["m"] else AggressorSide.BUYER,
                                     TradeId(str(d["t"])), ts, ts))
    return out


def _nautilus_mm_class():
    from nautilus_trader.model.enums import BookType, OrderSide
    from nautilus_trader.trading.strategy import Strategy

    class MarketMaker(Strategy):
        """mid +- HALF_SPREAD ticks, requote when REQUOTE ticks off, max position MAX_POS lots,
        post-only limits: the same rules as the hftbacktest kernel above."""

        def __init__(self, instrument):
            super().__init__()
            self.inst = instrument
            self.bid = None
            self.ask = None
            self.wakeups = 0
            self.sent = 0

        def on_start(self):
            self.subscribe_order_book_deltas(self.inst.id, BookType.L2_MBP)

        def _quote(self, side, target, live):
            if live is not None and not live.is_closed:
                if abs(round(float(live.price) / TICK) - target) >= REQUOTE:
                    self.cancel_order(live)
                return live
            o = self.order_factory.limit(self.inst.id, side, self.inst.make_qty(QTY_LOTS * LOT),
                                         self.inst.make_price(target * TICK), post_only=True)
            self.submit_order(o)
            self.sent += 1
            return o

        def on_order_book_deltas(self, deltas):
            self.wakeups += 1
            book = self.cache.order_book(self.inst.id)
            bb, ba = book.best_bid_price(), book.best_ask_price()
            if bb is None or ba is None or ba <= bb:
                return
            bbt, bat = round(float(bb) / TICK), round(float(ba) / TICK)
            net = self.portfolio.net_position(self.inst.id)
            pos = float(net) / LOT if net is not None else 0.0
            if pos + QTY_LOTS <= MAX_POS:
                self.bid = self._quote(OrderSide.BUY, (bbt + bat) // 2 - HALF_SPREAD, self.bid)
            if pos - QTY_LOTS >= -MAX_POS:
                self.ask = self._quote(OrderSide.SELL, (bbt + bat + 1) // 2 + HALF_SPREAD, self.ask)

    return MarketMaker


class Nautilus:
    name = "nautilus_trader"

    def __init__(self, path, tmp):
        import nautilus_trader
        from nautilus_trader.test_kit.providers import TestInstrumentProvider

        self.version = nautilus_trader.__version__
        self.inst = TestInstrumentProvider.btcusdt_perp_binance()
        self.data = _nautilus_data(path, self.inst)
        self.mm = _nautilus_mm_class()

    def _engine(self):
        from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
        from nautilus_trader.config import LoggingConfig
        from nautilus_trader.model.currencies import USDT
        from nautilus_trader.model.enums import AccountType, BookType, OmsType
        from nautilus_trader.model.identifiers import Venue
        from nautilus_trader.model.objects import Money

        eng = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR", bypass_logging=True)))
        eng.add_venue(Venue("BINANCE"), oms_type=OmsType.NETTING, account_type=AccountType.MARGIN,
                      base_currency=None, starting_balances=[Money(1_000_000, USDT)], book_type=BookType.L2_MBP)
        eng.add_instrument(self.inst)
        eng.add_data(self.data, sort=False)
        return eng

    def run(self, mode):
        eng = self._engine()
        strat = None
        if mode == "mm":
            strat = self.mm(self.inst)
            eng.add_strategy(strat)
        t0 = time.perf_counter()
        eng.run()
        wall = time.perf_counter() - t0
        info = {"events": len(self.data)}
        if strat is not None:
            info.update(wakeups=strat.wakeups, orders=strat.sent)
        eng.dispose()
        return wall, info


# ------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--repeat", type=int, default=3, help="rounds (median reported; >= 3)")
    ap.add_argument("--skip", default="", help="comma-separated: hftbacktest,nautilus")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    tmp = pathlib.Path(os.environ.get("TMPDIR", "/tmp"))

    engines, skipped = [], {}
    t0 = time.perf_counter()
    engines.append(Livestack(args.data))
    prep = {"livestack": time.perf_counter() - t0}
    for key, cls in (("hftbacktest", Hftbacktest), ("nautilus", Nautilus)):
        if key in skip:
            skipped[cls.name] = "--skip"
            continue
        t0 = time.perf_counter()
        try:
            engines.append(cls(args.data, tmp))
            prep[cls.name] = time.perf_counter() - t0
        except ImportError as e:
            skipped[cls.name] = f"not installed ({e}); pip install -e '.[peers]'"
        except Exception as e:  # noqa: BLE001 - a peer's API drift must not hide the others
            skipped[cls.name] = f"failed to set up: {type(e).__name__}: {e}"
            traceback.print_exc()
    for name, why in skipped.items():
        print(f"SKIPPED {name}: {why}")

    walls = {(e.name, m): [] for e in engines for m in ("none", "mm")}
    info = {}
    for _ in range(max(1, args.repeat)):
        for mode in ("none", "mm"):
            for e in engines:
                try:
                    w, i = e.run(mode)
                except Exception as ex:  # noqa: BLE001
                    print(f"{e.name} {mode} failed: {type(ex).__name__}: {ex}")
                    traceback.print_exc()
                    continue
                walls[(e.name, mode)].append(w)
                info[(e.name, mode)] = i

    results, rows = {}, []
    for mode in ("none", "mm"):
        ref = walls.get(("livestack", mode))
        ref_med = statistics.median(ref) if ref else None
        for e in engines:
            ws = walls[(e.name, mode)]
            if not ws:
                continue
            med = statistics.median(ws)
            i = info[(e.name, mode)]
            r = {"wall_s_median": med, "wall_s_runs": ws, "events_per_s": i["events"] / med, **i,
                 "livestack_speedup": (med / ref_med) if ref_med else None,
                 "version": getattr(e, "version", None)}
            results[f"{e.name} / {mode}"] = r
            rows.append([mode, e.name, f"{i['events']:,}", f"{med * 1e3:.1f}", f"{r['events_per_s'] / 1e6:.2f}M",
                         f"{1 / med:.2f}", f"{i.get('wakeups', 0) if mode == 'mm' else 0:,}", f"{i.get('orders', 0):,}",
                         "1.00" if e.name == "livestack" else f"{r['livestack_speedup']:.1f}x"])
    m = machine()
    print(f"\nPeers on {args.data}: median of {args.repeat} interleaved rounds; {m['cpu']} ({m['cores']} CPUs, "
          f"shared), load average {os.getloadavg()[0]:.1f}, {m['when']}")
    print(table(rows, ["strategy", "engine", "events (own count)", "wall ms", "events/s", "capture passes/s",
                       "strategy calls", "orders", "livestack faster by"]))
    print("  'livestack faster by' = the peer's wall time / livestack's on the same capture and strategy kind "
          "(events are counted differently by each engine; the wall time over the same capture is comparable).")
    path = write_result("peers", {"data": args.data, "repeat": args.repeat, "results": results,
                                  "skipped": skipped, "prepare_s": prep, "load_average_1m": os.getloadavg()[0],
                                  "mm": {"half_spread_ticks": HALF_SPREAD, "requote_ticks": REQUOTE,
                                         "max_position_lots": MAX_POS, "qty_lots": QTY_LOTS}})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
