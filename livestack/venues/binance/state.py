"""The binance venue's view of one order at Binance (one clientOrderId)."""

from __future__ import annotations

import time


class _VOrder:
    """One order at Binance (one clientOrderId)."""

    __slots__ = ("cid", "inst", "symbol", "side", "price", "qty", "clid", "order_id", "acked", "terminal",
                 "cum", "sent_mono", "pending_replace", "retired", "cancel_sent", "replacing", "held", "resolving",
                 "base")

    def __init__(self, cid, inst, side, price, qty, clid):
        self.cid = cid              # the core order this venue order currently is
        self.inst = inst
        self.symbol = inst.symbol
        self.side = side
        self.price = price
        self.qty = qty              # venue quantity (what Binance was asked for)
        self.clid = clid
        self.order_id = 0
        self.acked = False
        self.terminal = False
        self.cum = 0                # filled at Binance, as reported to the core
        self.sent_mono = time.monotonic()
        self.pending_replace = 0    # spot: the orig cid this new venue order replaces, until REPLACED
        self.retired = False        # spot: canceled by our cancelReplace (its CANCELED is not news)
        self.cancel_sent = False
        self.replacing = False      # spot: our cancelReplace of it is in flight (its CANCELED is held)
        self.held = None            # (exec type, reason, ts ms, cum): a terminal event that came before fills
        self.resolving = False      # a status query is under way
        self.base = 0               # spot: filled by the venue orders this one replaced (cancelReplace)
