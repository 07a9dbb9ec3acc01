"""Builders of core input records (for tests, the backtest and examples; not used on the hot path).

Each builder returns one record of its own dtype; :func:`slots` packs a sequence of them, in
order, into a ``SLOT128`` array — the form :meth:`livestack.core.Core.process_array` takes.
"""

from __future__ import annotations

import numpy as np

from livestack.schema import DTYPES, SLOT128, new
from livestack.schema.dtypes import ExecType, FeedStatus, RecordFlag, Side  # noqa: F401

LAST = int(RecordFlag.LAST_IN_MSG)
SNAP = int(RecordFlag.SNAPSHOT)


def _one(name, **kw):
    return new(name, 1, **kw)[0]


def md_level(inst, ts, side, price, qty, flags=LAST, update_id=0):
    return _one("MD_LEVEL", instrument=inst, ts=ts, ts_event=ts, side=side, price=price, qty=qty,
                flags=flags, update_id=update_id)


def md_trade(inst, ts, side, price, qty, trade_id=0):
    return _one("MD_TRADE", instrument=inst, ts=ts, ts_event=ts, side=side, price=price, qty=qty,
                trade_id=trade_id)


def md_bbo(inst, ts, bid_px, bid_qty, ask_px, ask_qty):
    return _one("MD_BBO", instrument=inst, ts=ts, ts_event=ts, bid_px=bid_px, bid_qty=bid_qty,
                ask_px=ask_px, ask_qty=ask_qty)


def md_status(inst, ts, status, update_id=0, detail=0):
    return _one("MD_STATUS", instrument=inst, ts=ts, ts_event=ts, status=status, update_id=update_id,
                detail=detail)


def snapshot(inst, ts, bids, asks):
    """SNAPSHOT_BEGIN, the levels (flag SNAPSHOT), SNAPSHOT_END: a consistent book."""
    out = [md_status(inst, ts, FeedStatus.SNAPSHOT_BEGIN)]
    for px, q in bids:
        out.append(md_level(inst, ts, Side.BUY, px, q, flags=SNAP))
    for px, q in asks:
        out.append(md_level(inst, ts, Side.SELL, px, q, flags=SNAP))
    out.append(md_status(inst, ts, FeedStatus.SNAPSHOT_END))
    return out


def exec_(inst, ts, exec_type, client_order_id, *, orig=0, venue_order_id=0, exec_id=0, exec_id_hi=0,
          side=0, price=0, qty=0, last_px=0, last_qty=0, cum_qty=0, leaves_qty=0, reason=0):
    """An EXEC record. ``exec_id``: the venue's execution id as a string (its 128-bit identity,
    ``livestack.venues.execid.exec_id_words``, fills both words) or the low word as an int (with
    ``exec_id_hi``). A fill needs a non-zero identity: the core rejects ``(0, 0)`` (BAD_EXEC_ID)."""
    if isinstance(exec_id, (str, bytes)):
        from livestack.venues.execid import exec_id_words

        exec_id, exec_id_hi = exec_id_words(exec_id)
    return _one("EXEC", instrument=inst, ts=ts, ts_event=ts, exec_type=exec_type,
                client_order_id=client_order_id, orig_client_order_id=orig,
                venue_order_id=venue_order_id, exec_id=exec_id, exec_id_hi=exec_id_hi, side=side,
                price=price, qty=qty,
                last_px=last_px, last_qty=last_qty, cum_qty=cum_qty, leaves_qty=leaves_qty,
                reason=reason)


def control(ts, cmd, *, inst=0, arg0=0, arg1=0, arg2=0, request_id=0):
    return _one("CONTROL_CMD", instrument=inst, ts=ts, cmd=cmd, arg0=arg0, arg1=arg1, arg2=arg2,
                request_id=request_id)


def timer(ts, interval=0):
    return _one("TIMER", ts=ts, interval=interval)


def slots(records) -> np.ndarray:
    """Pack records of any kinds, in order, into a SLOT128 array."""
    records = list(records)
    out = np.zeros(len(records), dtype=SLOT128)
    raw = out.view(np.uint8).reshape(len(records), 128)
    for k, r in enumerate(records):
        b = np.frombuffer(r.tobytes(), dtype=np.uint8)
        raw[k, :b.size] = b
    return out


def decode(records: np.ndarray, name: str) -> np.ndarray:
    """The records of kind ``name`` from a SLOT128 output array, viewed with their own dtype."""
    kind = DTYPES[name]
    from livestack.schema import spec
    rk = spec.RECORDS_BY_NAME[name].kind
    sel = records[records["kind"] == rk]
    raw = np.ascontiguousarray(sel).view(np.uint8).reshape(len(sel), 128)[:, :kind.itemsize]
    return np.ascontiguousarray(raw).view(kind).reshape(len(sel))
