"""The binance venue's journal: what it told the core, so a restarted venue process reports only
what is new.

One JSON line per event the venue emitted: the order's state after it (clientOrderId, core id,
instrument, side, price, quantity, Binance orderId, acked / terminal / retired, cumulative filled)
and, for a fill, its execution id text. On start the last line of each clientOrderId rebuilds the
venue's orders and the set of fills already reported; the reconciliation that follows every
connect then asks Binance about each order not terminal and reports exactly what happened while no
venue process was running (fills once by trade id, terminal states once). Lines are flushed at
once (a killed process loses nothing it emitted); a torn last line is skipped.
"""

from __future__ import annotations

import logging
import os

import orjson

from livestack.venues.binance.state import _VOrder

log = logging.getLogger(__name__)


class Journal:
    def __init__(self, store_dir: str, epoch: int):
        from livestack.secrets import open_private, private_dir

        private_dir(store_dir)
        self.path = os.path.join(store_dir, f"binance-{epoch}.jsonl")
        self._f = open_private(self.path, "a")

    def load(self, instruments: dict):
        """``(orders by clientOrderId, exec id texts)`` from the file."""
        last: dict[str, dict] = {}
        execs: list[str] = []
        bad = 0
        with open(self.path, "rb") as f:
            for line in f:
                try:
                    d = orjson.loads(line)
                    last[d["clid"]] = d
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
            v.sent_mono = 0.0   # long ago: its requests can no longer be taken
            orders[clid] = v
        return orders, execs

    def write(self, v: _VOrder, exec_text: str = "") -> None:
        d = {"clid": v.clid, "cid": v.cid, "inst": int(v.inst.id), "side": v.side, "price": v.price, "qty": v.qty,
             "oid": v.order_id, "acked": v.acked, "term": v.terminal, "ret": v.retired, "cum": v.cum}
        if exec_text:
            d["x"] = exec_text
        self._f.write(orjson.dumps(d).decode() + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()
