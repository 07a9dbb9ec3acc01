"""Fees of fills as EXEC records of type FEE (``livestack/schema/spec.py``, ExecType FEE).

A venue that knows a fill's fee sends, right after the fill's EXEC, an EXEC FEE with the same
``client_order_id`` / ``exec_id`` / ``exec_id_hi``: ``last_qty`` = the fee in ``FEE_DECIMALS``
fixed point of the fee asset, ``orig_client_order_id`` = the asset's name packed by
:func:`asset_code`. The core records it (it is a journaled input, a row of ``/exec``) and applies
nothing; readers join it to the fill by exec id (:func:`fees_of`).
"""

from __future__ import annotations

#: decimals of EXEC FEE ``last_qty`` (Binance commissions have at most 8)
FEE_DECIMALS = 8


def asset_code(name: str) -> int:
    """The fee asset's name as an int64: up to 8 ASCII bytes, big-endian, zero-padded ("USDT" ->
    0x5553445400000000). 0 for a name that does not fit (longer, or not ASCII)."""
    try:
        raw = name.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        return 0
    if not raw or len(raw) > 8 or raw[0] >= 0x80:
        return 0
    return int.from_bytes(raw.ljust(8, b"\0"), "big")


def asset_name(code: int) -> str:
    """Inverse of :func:`asset_code` ("" for 0)."""
    if code <= 0:
        return ""
    return int(code).to_bytes(8, "big").rstrip(b"\0").decode("ascii", "replace")


def fees_of(execs) -> dict:
    """``{(exec_id, exec_id_hi): (fee as a decimal string, asset)}`` of the FEE rows of an ``/exec``
    table (numpy structured array or pandas frame with the EXEC fields; exec_type as int or name)."""
    from livestack.schema import ExecType, format_fixed

    out = {}
    fee = int(ExecType.FEE)
    for et, lo, hi, q, a in zip(execs["exec_type"], execs["exec_id"], execs["exec_id_hi"], execs["last_qty"],
                                execs["orig_client_order_id"]):
        if et == fee or str(et) == "FEE":
            out[(int(lo), int(hi))] = (format_fixed(int(q), FEE_DECIMALS), asset_name(int(a)))
    return out
