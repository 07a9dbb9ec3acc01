"""RequestForPositions (35=AN) during recovery, where the peer supports it (``[venue.options]
positions_request = true``; issue 14): the venue's positions, compared by the core with its own.

::

    a burst of STATUS commands (a recovery) ──▶ 35=AN 710=<id> 724=0 (positions) 1=<account> 581=1
    peer: PositionReport 35=AP 710=<id> 727=<total> 55=<symbol> 704=<LongQty> 705=<ShortQty> ...
          (or RequestForPositionsAck 35=AO 728=2: no positions)
      every report in ──▶ one EXEC ORDER_STATUS reason 3 per instrument of this venue,
                          client_order_id 0, qty = LongQty - ShortQty (0 when not reported)
    core (recovery.pyx on_position_status): qty != its position ──▶ ANOMALY RECON_MISMATCH naming
          the instrument, HALTED. The exec ring is FIFO: every fill the venue counted reached the
          core before the report did.
    peer refuses AN (Reject / BusinessMessageReject / AO 728 other than 0 or 2) ──▶ no more AN
          (``stats["positions_unsupported"]``)

The venue reports the ACCOUNT's position: use an account that only this session trades, or the
comparison halts on positions it did not make.
"""

from __future__ import annotations

import itertools
import time
from decimal import Decimal, InvalidOperation

import numpy as np

from livestack.schema import ExecType, new

POSITION_REPORT = 3   # EXEC ORDER_STATUS reason of a position (core/recovery.pyx STATUS_POSITION)
REQUEST_TIMEOUT_S = 10.0


class Positions:
    def __init__(self, adapter, account: str):
        self.ad = adapter
        self.account = account
        self.enabled = True
        self.req_id: str | None = None
        self.sent_at = 0.0
        self.expected = -1
        self.got: dict[int, int] = {}    # instrument -> net qty (fixed point)
        self.reports = 0
        self._ids = itertools.count(1)
        self._by_symbol = {i.symbol.encode(): i for i in adapter.instruments.values()}

    def request(self) -> None:
        """Send one AN unless one is outstanding (a recovery's STATUS burst asks once)."""
        now = time.monotonic()
        if not self.enabled or (self.req_id is not None and now - self.sent_at < REQUEST_TIMEOUT_S):
            return
        req = f"PR{self.ad.session.store.next_out}-{next(self._ids)}"
        day = time.strftime("%Y%m%d", time.gmtime())
        stamp = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime())
        seq = self.ad.session.send_app(
            lambda seq, now_ns: self.ad.enc.encode(b"AN", seq, now_ns, [
                (710, req), (724, 0), (1, self.account), (581, 1), (715, day), (60, stamp)]),
            "AN", req, "", 0, 0)
        if seq:
            self.req_id, self.sent_at, self.expected, self.got, self.reports = req, now, -1, {}, 0
            self.ad.stats["positions_requests"] += 1

    def on_message(self, msg):
        """35=AP / 35=AO answering our AN."""
        if self.req_id is None or msg.get_str(710) != self.req_id:
            self.ad.stats["positions_stale"] += 1
            return None
        result = msg.get_int(728, 0)
        if msg.msg_type == b"AO" or result != 0:
            if result == 2:                     # no positions found: every instrument is flat there
                self._finish()
            elif result != 0:
                self.refused()
            return None
        self.expected = msg.get_int(727, 1)
        inst = self._by_symbol.get(msg.get(55) or b"")
        if inst is None:
            self.ad.stats["positions_unknown_symbol"] += 1
        else:
            try:
                long_, short = (Decimal((msg.get(t) or b"0").decode()) for t in (704, 705))
            except InvalidOperation:
                return (6, 704, "LongQty/ShortQty")   # IncorrectDataFormat
            scale = Decimal(10) ** inst.qty_decimals
            self.got[int(inst.id)] = self.got.get(int(inst.id), 0) + int((long_ - short) * scale)
        self.reports += 1
        if self.reports >= self.expected:
            self._finish()
        return None

    def refused(self) -> None:
        self.enabled = False
        self.req_id = None
        self.ad.stats["positions_unsupported"] += 1

    def _finish(self) -> None:
        self.req_id = None
        for inst_id in sorted(self.ad.instruments):
            r = new("EXEC")[0]
            r["ts"] = r["ts_event"] = self.ad.wall()
            r["instrument"] = inst_id
            r["exec_type"] = int(ExecType.ORDER_STATUS)
            r["reason"] = POSITION_REPORT
            r["qty"] = np.int64(self.got.get(inst_id, 0))
            self.ad.events.append(r)
            self.ad.stats["events"] += 1
        self.ad.stats["positions_reports"] += 1
