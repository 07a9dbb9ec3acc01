"""The binance venue's journal: what it told the core, so a restarted venue process reports only
what is new.

One JSON line per NEW, CANCEL and REPLACE command taken from the orders ring (written at once, before the
command is acted on), and one per event the venue emitted: the order's state after it (clientOrderId, core id,
instrument, side, price, quantity, Binance orderId, acked / terminal / retired, cumulative filled)
and, for a fill, its execution id text. On start the last line of each clientOrderId rebuilds the
venue's orders and the set of fills already reported; the reconciliation that follows every
connect then asks Binance about each order not terminal and reports exactly what happened while no
venue process was running (fills once by trade id, terminal states once). Lines are flushed at
once; an event's line is written once the exec ring took the event (``BinanceAdapter.delivered``),
not when it is made nor when the process loop polls it, so a process killed with events still in
its queue, in the loop's buffer or waiting on a full ring reports them again after the restart (the
core applies a fill once by exec id) instead of never. A spot replace's REPLACED carries the
retired old order's line too; a refused CANCEL / REPLACE carries its order's line (answered). A
torn last line is skipped.
"""

from __future__ import annotations

import logging
import os

import orjson

from livestack.schema import OrderCmdType
from livestack.venues.binance.state import _VOrder

_CANCEL = int(OrderCmdType.CANCEL)

log = logging.getLogger(__name__)


class Journal:
    def __init__(self, store_dir: str, epoch: int):
        from livestack.secrets import open_private, private_dir

        private_dir(store_dir)
        self.path = os.path.join(store_dir, f"binance-{epoch}.jsonl")
        self._f = open_private(self.path, "a")

    def load(self, instruments: dict):
        """``(orders by clientOrderId, exec id texts, unanswered commands)`` from the file: a CANCEL /
        REPLACE is unanswered when no line of its order follows it (the venue reported nothing for
        that order after taking the command)."""
        last: dict[str, dict] = {}
        execs: list[str] = []
        clid_of: dict[int, str] = {}          # core id -> clientOrderId of its venue order, so far
        unanswered: dict[str, tuple] = {}     # clientOrderId -> the command taken for it
        bad = 0
        with open(self.path, "rb") as f:
            for line in f:
                try:
                    d = orjson.loads(line)
                    if "cmd" in d:
                        cmd = tuple(d["cmd"])
                        target = clid_of.get(cmd[1] if cmd[0] == _CANCEL else cmd[2])
                        if target is not None:
                            unanswered[target] = cmd
                        continue
                    last[d["clid"]] = d
                    clid_of[d["cid"]] = d["clid"]
                    unanswered.pop(d["clid"], None)
                    if d.get("x"):
                        execs.append(d["x"])
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    bad += 1
        if bad:
            log.warning("binance: journal %s: %d unreadable lines skipped", self.path, bad)
        orders = {}
        for clid, d in last.items():
            inst = instruments.get(d.get("inst"))
            if inst is None:
                continue
            v = _VOrder(d["cid"], inst, d["side"], d["price"], d["qty"], clid)
            v.order_id, v.acked, v.terminal, v.retired, v.cum = d["oid"], d["acked"], d["term"], d["ret"], d["cum"]
            v.base = d.get("base", 0)
            v.sent_mono = 0.0   # long ago: its requests can no longer be taken
            orders[clid] = v
        taken = [cmd for clid, cmd in unanswered.items() if clid in orders and not orders[clid].terminal]
        return orders, execs, taken

    def write(self, v: _VOrder, exec_text: str = "") -> None:
        self.write_lines((self.line(v, exec_text),))

    @staticmethod
    def line(v: _VOrder, exec_text: str = "") -> bytes:
        """The journal line of ``v``'s state now (and of the fill ``exec_text`` just reported)."""
        d = {"clid": v.clid, "cid": v.cid, "inst": int(v.inst.id), "side": v.side, "price": v.price, "qty": v.qty,
             "oid": v.order_id, "acked": v.acked, "term": v.terminal, "ret": v.retired, "cum": v.cum,
             "base": v.base}
        if exec_text:
            d["x"] = exec_text
        return orjson.dumps(d) + b"\n"

    @staticmethod
    def command_line(cmd: tuple) -> bytes:
        """The journal line of a CANCEL / REPLACE command taken from the ring (sent again by a
        successor that finds it had no effect)."""
        return orjson.dumps({"cmd": list(cmd)}) + b"\n"

    def write_lines(self, lines) -> None:
        self._f.write(b"".join(lines).decode())
        self._f.flush()

    def close(self) -> None:
        self._f.close()
