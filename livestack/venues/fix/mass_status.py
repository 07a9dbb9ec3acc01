"""OrderMassStatusRequest (35=AF) for the core's STATUS commands, where the peer supports it
(``[venue.options] mass_status = true``; issue 14, recovery).

::

    STATUS cid ──▶ asked[cid]; no AF outstanding ──▶ 35=AF 584=<id> 585=7 (all orders)
    peer: ExecutionReport 150=I 584=<id> 911=<total> 912=Y on the last (one per live order; with
          none, one report 911=0 912=Y for no order)
      report for an asked ClOrdID ──▶ forwarded as the order's EXEC ORDER_STATUS (as a 35=H answer)
      report for an order not asked about ──▶ dropped (counted: mass_status_unasked)
      912=Y ──▶ each asked order the peer did not list ──▶ its own 35=H (the per-order answer says
                whether it ended there and with what cum_qty: an absence says neither)
    peer refuses AF (session Reject / BusinessMessageReject) ──▶ 35=H for every asked order, and
          35=H from then on (``stats["mass_status_unsupported"]``)

One AF answers a whole RECOVER (every open order) in one round trip instead of one per order.
"""

from __future__ import annotations

import itertools


class MassStatus:
    """The adapter's mass-status state: ``send_h(cid, instrument, side)`` sends one 35=H."""

    def __init__(self, adapter):
        self.ad = adapter
        self.enabled = True
        self.req_id: str | None = None      # the outstanding AF's MassStatusReqID
        self.asked: dict[int, tuple[int, int]] = {}   # cid -> (instrument, side) awaiting this AF
        self.listed: set[int] = set()
        self._ids = itertools.count(1)

    def ask(self, cid: int, instrument: int, side: int) -> bool:
        """Cover a STATUS command with an AF; False when AF is off (send a 35=H)."""
        if not self.enabled:
            return False
        self.asked[cid] = (instrument, side)
        if self.req_id is None:
            req = f"MS{self.ad.session.store.next_out}-{next(self._ids)}"
            seq = self.ad.session.send_app(
                lambda seq, now: self.ad.enc.encode(b"AF", seq, now, [(584, req), (585, 7)]), "AF", req, "", 0, 0)
            if not seq:
                return False  # session down meanwhile: the caller's 35=H path queues it
            self.req_id = req
            self.ad.stats["mass_status_requests"] += 1
        return True

    def on_report(self, msg):
        """An ExecutionReport carrying MassStatusReqID (584): forward, drop, or finish the AF."""
        from livestack.venues.fix import codec

        if self.req_id is None or msg.get_str(584) != self.req_id:
            self.ad.stats["mass_status_stale"] += 1
            return None
        out = None
        raw = msg.get(11)
        cid = codec.fix_id(raw) if raw else 0
        if cid in self.asked and msg.get(150) == b"I":
            self.listed.add(cid)
            out = self.ad._decode_forward(msg)
        else:
            self.ad.stats["mass_status_unasked"] += 1
        if msg.get(912) == b"Y":
            self._finish()
        return out

    def refused(self) -> None:
        """The peer does not support AF: 35=H for what it should have answered, and from now on."""
        self.enabled = False
        self.ad.stats["mass_status_unsupported"] += 1
        self.listed.clear()
        self._finish()

    def _finish(self) -> None:
        missing = [(c, v) for c, v in self.asked.items() if c not in self.listed]
        self.req_id, self.asked, self.listed = None, {}, set()
        for cid, (instrument, side) in missing:
            self.ad.stats["mass_status_unlisted"] += 1
            self.ad._status_request(cid, instrument, side)
