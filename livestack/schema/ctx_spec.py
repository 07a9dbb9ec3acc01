"""THE word layout of the strategy context block (``cext/ls_core.h``), declared once.

``livestack/schema/ctxgen.py`` writes from it ``cext/ls_ctx_words.h`` (the C enums ls_core.h
includes), ``livestack/core/ctx.pxd`` (the Cython view) and ``livestack/core/ctx.pyx`` (the Python
constants numba and Python strategies use, ``livestack.strategies.kernels`` / ``pyctx``); the build
runs it, and ``tests/unit/core/test_ctx_spec.py`` fails when a generated file is stale. Add a word
here, never by hand in those files. Word indices are positions in these tuples.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    prefix: str                      # C names are LS_<prefix>_<word>, Python names <prefix>_<word>
    doc: str
    words: tuple[tuple[str, str], ...]   # (word, meaning), indices 0, 1, 2 ...
    size_name: str                   # the word count's name (LS_<prefix>_<size_name>)
    size_doc: str
    size_from: tuple | None = None   # (word, constant, multiplier): size = word + multiplier * constant


#: constants of the layout (C #define LS_<name>, Python <name>)
CONSTANTS = (
    ("INST_USER_WORDS", 16, "strategy scratch words per instrument (LS_INST_USER ...)"),
    ("ORD_EXEC_RING", 8, "exec ids remembered per order for fill dedup (pairs of words)"),
    ("INTENT_REDUCE_ONLY", 256, "bit of an intent's TIF word and of an order's FLAGS word: reduce-only "
                                "(ORDER_CMD flag REDUCE_ONLY; denied REDUCE_ONLY when it would not reduce)"),
)

BLOCKS = (
    Block("CTX", 'Header words.', (
        ('WORDS', 'total words in the block'),
        ('TS', 'ts of the input being processed (ns): the core\'s "now"'),
        ('HSEQ', 'harness sequence of the input'),
        ('EV_KIND', 'RecordKind of the input (MD_LEVEL, MD_TRADE, MD_BBO, MD_STATUS, EXEC, TIMER, CONTROL_CMD)'),
        ('EV_INST', 'instrument index of the input, -1 when none'),
        ('EV_FLAGS', 'header.flags of the input'),
        ('EV_SIDE', 'trade aggressor side / level side / exec side'),
        ('EV_PRICE', 'trade price / level price / exec last_px'),
        ('EV_QTY', 'trade qty / level qty / exec last_qty'),
        ('EV_STATUS', 'MD_STATUS: FeedStatus; EXEC: ExecType'),
        ('EV_ORDER_ID', 'EXEC: client_order_id, else 0'),
        ('EV_ORDER_SLOT', 'EXEC: order slot, -1 when unknown'),
        ('TRADING_STATE', 'TradingState'),
        ('KILL_LATCHED', '1 while the kill switch is latched'),
        ('N_INST', 'instruments'),
        ('DEPTH', "D: room per side in each instrument's top-of-book arrays (the largest per-instrument LS_INST_DEPTH)"),
        ('INST_OFF', 'word offset of instrument 0'),
        ('INST_STRIDE', 'words per instrument block'),
        ('LIVE_CAP', 'capacity of the per-instrument live order list'),
        ('INST_LIVE_OFF', 'offsets inside an instrument block: live order slot list'),
        ('INST_BIDPX_OFF', 'bid prices [D]'),
        ('INST_BIDQTY_OFF', 'bid sizes [D]'),
        ('INST_ASKPX_OFF', 'ask prices [D]'),
        ('INST_ASKQTY_OFF', 'ask sizes [D]'),
        ('ORD_OFF', 'word offset of order slot 0'),
        ('MAX_ORDERS', 'order slots'),
        ('PARAM_OFF', 'word offset of the parameters'),
        ('N_PARAMS', 'parameters'),
        ('INTENT_OFF', 'word offset of the intents buffer'),
        ('MAX_INTENTS', 'intents the buffer holds'),
        ('N_INTENTS', 'intents appended so far (the strategy bumps it)'),
        ('GUSER_OFF', 'word offset of the global user words'),
        ('N_GUSER', 'global user words'),
        ('NEXT_ORDER_ID', 'client_order_id the next accepted NEW/REPLACE gets'),
        ('ERROR', 'nonzero: the strategy reports an error in this call (numba/Python intents.error(w, code), Cython sdk_error(ctx, code); a Python exception: -1). The core drops the call\'s intents, records ANOMALY STRATEGY_ERROR + ANOMALY_TEXT, applies on_error and clears the word'),
    ), "HDR_WORDS", "header size", None),
    Block("INST", 'Instrument block: fixed fields (then the live order slots and the top-of-book arrays).', (
        ('ID', 'instrument id (header.instrument)'),
        ('HEALTHY', '1 after SNAPSHOT_END until GAP/STALE/DISCONNECTED/SNAPSHOT_BEGIN'),
        ('TICK', 'price tick (price units)'),
        ('LOT', 'quantity step (qty units)'),
        ('QTY_SCALE', '10**qty_decimals: notional = price * qty / QTY_SCALE'),
        ('BID_PX', 'best bid of the L2 book (0 when empty)'),
        ('BID_QTY', ''),
        ('ASK_PX', 'best ask of the L2 book (0 when empty)'),
        ('ASK_QTY', ''),
        ('N_BIDS', 'valid bid levels'),
        ('N_ASKS', 'valid ask levels'),
        ('BBO_BID_PX', 'last MD_BBO'),
        ('BBO_BID_QTY', ''),
        ('BBO_ASK_PX', ''),
        ('BBO_ASK_QTY', ''),
        ('LAST_PX', 'last public trade'),
        ('LAST_QTY', ''),
        ('LAST_SIDE', ''),
        ('LAST_TS', ''),
        ('POSITION', 'net position (qty units, signed)'),
        ('COST', 'signed cost basis of the open position (price x qty units)'),
        ('REALIZED', 'realized PnL (price x qty units)'),
        ('UNREALIZED', 'unrealized PnL at the last mark (price x qty units)'),
        ('OPEN_BUY_QTY', 'sum of leaves of live buy orders'),
        ('OPEN_SELL_QTY', 'sum of leaves of live sell orders'),
        ('N_LIVE', 'live orders (entries in the live list)'),
        ('IN_FLIGHT', 'orders awaiting a venue answer (pending new/cancel/replace)'),
        ('DEPTH', 'levels per side this instrument exposes (its book_depth, <= LS_CTX_DEPTH); the core holds the full book: N_BIDS/N_ASKS = min(levels held, DEPTH)'),
        ('USER', 'first of LS_INST_USER_WORDS strategy scratch words'),
    ), "FIXED_WORDS", "words of the fixed fields: LS_INST_USER + LS_INST_USER_WORDS", ("USER", "INST_USER_WORDS", 1)),
    Block("ORD", 'Order slot. A slot is live from dispatch until a terminal state; terminal slots are kept for late events until the slot is reused (oldest terminal first).', (
        ('ID', 'client_order_id (0: free slot)'),
        ('INST', 'instrument index'),
        ('SIDE', 'Side'),
        ('STATE', 'OrderState'),
        ('PRICE', 'limit price'),
        ('QTY', 'order quantity'),
        ('CUM_QTY', 'filled so far'),
        ('LEAVES', 'open quantity (qty - cum_qty while live, 0 when terminal)'),
        ('VENUE_ID', 'venue order id (0 until acknowledged)'),
        ('TIF', 'TimeInForce'),
        ('ORD_TYPE', 'OrdType'),
        ('PENDING_ID', 'PENDING_REPLACE: the new client_order_id'),
        ('PENDING_PRICE', 'PENDING_REPLACE: the new price'),
        ('PENDING_QTY', 'PENDING_REPLACE: the new quantity'),
        ('PRE_STATE', 'state to return to on CANCEL_REJECTED'),
        ('TS_SENT', 'ts of the last command sent for it'),
        ('CANCEL_AFTER', 'kill/cancel-all met a pending replace: cancel whichever id survives it'),
        ('NEW_POS', 'orders-ring position of its NewOrder (commands sent before it)'),
        ('EXEC_POS', 'next position in the exec-id ring'),
        ('FLAGS', 'order flags: LS_INTENT_REDUCE_ONLY'),
        ('EXEC_IDS', 'LS_ORD_EXEC_RING (exec_id, exec_id_hi) pairs of applied fills (dedupe)'),
    ), "WORDS", "words of an order slot: LS_ORD_EXEC_IDS + 2 * LS_ORD_EXEC_RING", ("EXEC_IDS", "ORD_EXEC_RING", 2)),
    Block("INTENT", 'Intent.', (
        ('TYPE', 'OrderCmdType: NEW, CANCEL, REPLACE'),
        ('INST', 'instrument index (NEW); ignored for CANCEL/REPLACE (taken from the order)'),
        ('SIDE', 'Side (NEW)'),
        ('PRICE', 'limit price (NEW, REPLACE)'),
        ('QTY', 'quantity (NEW, REPLACE)'),
        ('ORDER_ID', 'target client_order_id (CANCEL, REPLACE)'),
        ('TIF', 'TimeInForce (NEW), 0 = GTC; | LS_INTENT_REDUCE_ONLY: a reduce-only order'),
        ('ORD_TYPE', 'OrdType (NEW), 0 = LIMIT'),
    ), "WORDS", "words of an intent", None),
)


def layout() -> list[tuple[str, list[tuple[str, int, str]]]]:
    """[(block prefix, [(name without LS_, value, doc), ... the size last])] with values resolved."""
    const = {n: v for n, v, _ in CONSTANTS}
    out = []
    for b in BLOCKS:
        rows = [(f"{b.prefix}_{w}", k, d) for k, (w, d) in enumerate(b.words)]
        if b.size_from is None:
            size = len(b.words)
        else:
            word, c, mult = b.size_from
            size = [k for k, (w, _) in enumerate(b.words) if w == word][0] + mult * const[c]
        rows.append((f"{b.prefix}_{b.size_name}", size, b.size_doc))
        out.append((b.prefix, rows))
    return out
