"""THE record layouts of livestack: every record that crosses a process boundary, declared once.

Everything else is derived from this module:

* the numpy structured dtypes (``livestack.schema.dtypes``, built at import time from ``RECORDS``),
* the C structs in ``cext/ls_records.h`` and the Cython declarations in
  ``livestack/schema/records.pxd`` (both written by ``python -m livestack.schema.gen``; the build
  runs it, and a test fails if the checked-in files differ from what the generator writes),
* the HDF5 datasets of the session files (one dataset per record kind, with these dtypes).

Every record is a fixed-size slot of 64 or 128 bytes, 8-byte aligned, starting with the common
24-byte header::

     0       2     3     4           8                      16                     24
     +-------+-----+-----+-----------+----------------------+----------------------+
     | kind  | ver |flags| instrument|         seq          |          ts          |
     | u16   | u8  | u8  |    u32    |         u64          |      i64 (ns)        |
     +-------+-----+-----+-----------+----------------------+----------------------+

``seq`` is stamped by the record's producer. On the market-data, execution and command rings it is
the producer's own per-ring sequence (1, 2, 3 ...). On the records ring it is the record-stream
sequence stamped by the harness: contiguous from 1 over every record of the session, so a reader
proves nothing was lost by checking there is no hole.

``ts`` is the time the record entered the stack: ``ts_recv`` (our receive clock) for inputs,
``ts_core`` (the timestamp of the input being processed) for everything the core emits. The core
never reads a clock; its notion of *now* is the ``ts`` of the input it is processing.

Prices and sizes are int64 fixed-point, with the number of decimals kept per instrument
(``livestack.schema.fixedpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Bumped when the layout of any record changes; rings and files carry it and attach refuses a
#: mismatch.
SCHEMA_VERSION = 4  # 2: DENIAL v2 (count of coalesced repeats); 3: EXEC v2 / FILL v2 (128-bit exec id);
# 4: session files store each consumed input once, in its kind's dataset; /journal is JOURNAL_INDEX
# (BOOK_LEVELS, kind 17, was added to v3 without a bump: a new kind is additive, the writer creates
# datasets for kinds a file lacks)

CACHE_LINE = 64


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # one of TYPES
    unit: str
    doc: str
    count: int = 1  # > 1 for a fixed-size byte array ("u8" only)


@dataclass(frozen=True)
class Record:
    kind: int
    name: str  # upper case; C type is ls_<lower>_t, numpy dtype is <NAME>, HDF5 dataset /<lower>
    size: int  # slot size in bytes: 64 or 128
    doc: str
    fields: tuple[Field, ...]
    version: int = 1


@dataclass(frozen=True)
class Enum:
    name: str
    doc: str
    members: tuple[tuple[str, int, str], ...] = field(default_factory=tuple)


# C type, numpy type char, Cython type, size in bytes
TYPES = {
    "u8": ("uint8_t", "u1", "uint8_t", 1),
    "u16": ("uint16_t", "<u2", "uint16_t", 2),
    "u32": ("uint32_t", "<u4", "uint32_t", 4),
    "u64": ("uint64_t", "<u8", "uint64_t", 8),
    "i32": ("int32_t", "<i4", "int32_t", 4),
    "i64": ("int64_t", "<i8", "int64_t", 8),
}

F = Field

HEADER = (
    F("kind", "u16", "enum RecordKind", "record kind tag: which layout follows"),
    F("version", "u8", "", "layout version of this kind"),
    F("flags", "u8", "bits RecordFlag", "record flags"),
    F("instrument", "u32", "id", "instrument id from config; 0 when the record is not about one"),
    F("seq", "u64", "count", "producer sequence; on the records ring the contiguous record-stream sequence"),
    F("ts", "i64", "ns", "ts_recv for inputs, ts_core for core outputs (ns since the epoch)"),
)
HEADER_SIZE = 24

# ----------------------------------------------------------------------------------------------
# Enums. Values are part of the on-disk format: append, never renumber.
# ----------------------------------------------------------------------------------------------

ENUMS = (
    Enum("RecordKind", "record kind tags (header.kind)", (
        ("MD_LEVEL", 1, "L2 price level update"),
        ("MD_TRADE", 2, "public trade"),
        ("MD_BBO", 3, "top of book"),
        ("MD_STATUS", 4, "feed status: connected, gap, stale, snapshot begin/end"),
        ("EXEC", 5, "execution event from a venue"),
        ("ORDER_CMD", 6, "order command to a venue"),
        ("TIMER", 7, "timer tick injected by the harness when idle"),
        ("CONTROL_CMD", 8, "operational control command"),
        ("CONTROL_REPLY", 9, "reply to a control command"),
        ("ORDER_STATE", 10, "order state change"),
        ("FILL", 11, "fill applied to a position"),
        ("POSITION", 12, "position after a change"),
        ("DENIAL", 13, "intent denied by risk or execution control"),
        ("TRADING_STATE", 14, "trading state transition"),
        ("TELEMETRY", 15, "telemetry snapshot"),
        ("ANOMALY", 16, "surprising input recorded instead of crashing"),
        ("BOOK_LEVELS", 17, "up to 5 levels of one side of the core's top N (book_top rows are assembled from them)"),
        ("ANOMALY_TEXT", 18, "the message of the ANOMALY just before it (a strategy error's text)"),
    )),
    Enum("RecordFlag", "bits of header.flags", (
        ("LAST_IN_MSG", 1, "last record decoded from one venue message: the book is consistent after it"),
        ("SNAPSHOT", 2, "record belongs to a snapshot (between SNAPSHOT_BEGIN and SNAPSHOT_END)"),
        ("JOURNAL", 4, "on the records ring: a consumed input, journaled by the harness"),
        ("REPLAYED", 8, "produced by a replay, not live"),
        ("REDUCE_ONLY", 16, "ORDER_CMD NEW / REPLACE: the order may only reduce the position (Binance USD-M "
                            "reduceOnly=true; the intent's TIF word carried LS_INTENT_REDUCE_ONLY)"),
    )),
    Enum("Side", "order or aggressor side", (
        ("NONE", 0, "unknown or not applicable"),
        ("BUY", 1, "bid / buy"),
        ("SELL", 2, "ask / sell"),
    )),
    Enum("FeedStatus", "MD_STATUS.status", (
        ("CONNECTED", 1, "feed connected, waiting for a snapshot"),
        ("DISCONNECTED", 2, "feed connection lost"),
        ("GAP", 3, "sequence gap detected: book invalid until resync"),
        ("STALE", 4, "no message for longer than the stale threshold"),
        ("SNAPSHOT_BEGIN", 5, "a snapshot follows: clear the book"),
        ("SNAPSHOT_END", 6, "snapshot complete: the book is valid (resynced)"),
    )),
    Enum("ExecType", "EXEC.exec_type", (
        ("ACCEPTED", 1, "order accepted (new ack)"),
        ("REJECTED", 2, "order rejected"),
        ("PARTIALLY_FILLED", 3, "partial fill"),
        ("FILLED", 4, "order completely filled"),
        ("CANCELED", 5, "order canceled"),
        ("CANCEL_REJECTED", 6, "cancel or replace request rejected"),
        ("REPLACED", 7, "replace accepted: price/qty changed, client_order_id renamed"),
        ("EXPIRED", 8, "order expired (time in force)"),
        ("VENUE_RESET", 9, "the venue process restarted without its order state (client_order_id 0, "
                           "instrument 0 = all): every order whose NewOrder came before orders-ring "
                           "position venue_order_id is gone"),
        ("ORDER_STATUS", 10, "answer to a STATUS command (never a fill): reason 0 = the order is live at the "
                             "venue (price, qty, cum_qty, leaves_qty, venue_order_id are its state); reason "
                             "1 = the venue does not know the order; 2 = it ended there (cum_qty = its fills)"),
        ("STOP_UNRESOLVED", 11, "made by the core, never by a venue: the session stopped before the venue "
                                "answered for the order (ORDER_STATE UNKNOWN carries it as the reason)"),
        ("FEE", 12, "the fee of the fill just before it (same client_order_id, exec_id, exec_id_hi): last_qty = "
                    "the fee in 1e-8 units of the fee asset (Binance commission 'n'), orig_client_order_id = "
                    "the fee asset's name as up to 8 ASCII bytes, big-endian (livestack.venues.fees; 0 = "
                    "longer name); recorded, never applied to the order or the position"),
    )),
    Enum("OrderCmdType", "ORDER_CMD.cmd", (
        ("NEW", 1, "NewOrder"),
        ("CANCEL", 2, "CancelOrder"),
        ("REPLACE", 3, "ReplaceOrder"),
        ("STATUS", 4, "OrderStatusRequest: the venue answers with an EXEC ORDER_STATUS (recovery, pending timeouts)"),
    )),
    Enum("OrdType", "ORDER_CMD.ord_type", (
        ("LIMIT", 1, "limit order"),
        ("MARKET", 2, "market order"),
    )),
    Enum("TimeInForce", "ORDER_CMD.tif", (
        ("GTC", 1, "good till cancel"),
        ("IOC", 2, "immediate or cancel"),
        ("POST_ONLY", 3, "rest or reject"),
        ("DAY", 4, "good for the trading day (FIX 59=0)"),
        ("FOK", 5, "fill or kill: fill completely at once or expire (Binance timeInForce FOK)"),
    )),
    Enum("OrderState", "order lifecycle states", (
        ("NONE", 0, "no order"),
        ("PENDING_NEW", 1, "sent, not acknowledged"),
        ("ACCEPTED", 2, "acknowledged, resting"),
        ("PARTIALLY_FILLED", 3, "resting, partly filled"),
        ("FILLED", 4, "completely filled (terminal)"),
        ("PENDING_CANCEL", 5, "cancel sent"),
        ("CANCELED", 6, "canceled (terminal)"),
        ("PENDING_REPLACE", 7, "replace sent"),
        ("REPLACED", 8, "replaced by a new client_order_id (terminal for the old id)"),
        ("REJECTED", 9, "rejected (terminal)"),
        ("EXPIRED", 10, "expired (terminal)"),
        ("UNKNOWN", 11, "outcome unknown: sent before a harness restart and not yet explained by the venue, "
                        "or still unanswered at stop (terminal then; the ORDER_STATE exec_type says why)"),
    )),
    Enum("TradingState", "execution-control trading state", (
        ("ACTIVE", 0, "orders allowed"),
        ("REDUCING", 1, "only orders that reduce a position"),
        ("HALTED", 2, "no new orders"),
        ("RECOVERING", 3, "a restarted harness rebuilt its state from the journal and waits for the venues "
                          "to explain every open order: no new orders"),
    )),
    Enum("DenyReason", "risk / execution-control reason codes", (
        ("NONE", 0, "not denied"),
        ("UNKNOWN_INSTRUMENT", 1, "instrument not configured or not tradable"),
        ("BAD_PRICE", 2, "price not positive or not on tick"),
        ("BAD_QTY", 3, "quantity not positive or not on lot"),
        ("MAX_ORDER_QTY", 4, "order quantity above limit"),
        ("MAX_NOTIONAL", 5, "order notional above limit"),
        ("MAX_POSITION", 6, "worst-case position above limit"),
        ("MAX_OPEN_ORDERS", 7, "too many open orders on the instrument"),
        ("SUBMIT_RATE", 8, "submit rate limit"),
        ("CANCEL_RATE", 9, "cancel rate limit"),
        ("PRICE_BAND", 10, "price outside the band around the reference"),
        ("MAX_LOSS", 11, "daily loss limit reached"),
        ("REDUCE_ONLY", 12, "trading state REDUCING, or a reduce-only order: order would increase the position"),
        ("SELF_CROSS", 13, "would trade against our own resting order"),
        ("FEED_UNHEALTHY", 14, "instrument feed gap, stale or disconnected"),
        ("HALTED", 15, "trading state HALTED or kill switch latched"),
        ("DUPLICATE", 16, "same intent already in flight"),
        ("BACKPRESSURE", 17, "order ring full: nothing sent"),
        ("ORDER_TABLE_FULL", 18, "open-order table full"),
        ("UNKNOWN_ORDER", 19, "cancel/replace of an order the core does not know or that is not live"),
        ("NO_REFERENCE", 20, "no reference price for the band check"),
        ("THROTTLE", 21, "order throttle: too many orders in flight"),
        ("MIN_NOTIONAL", 22, "order notional below the venue's minimum (Binance MIN_NOTIONAL / NOTIONAL filter)"),
        ("RECOVERING", 23, "trading state RECOVERING: the venue has not explained every open order yet"),
        ("INSTRUMENT_HALTED", 24, "the instrument is halted (pending timeout or reject storm) until the operator "
                                  "re-enables trading"),
        ("MIN_ORDER_QTY", 25, "order quantity below the venue's minimum (Binance LOT_SIZE minQty)"),
        ("PRICE_FILTER", 26, "price below the venue's minimum or above its maximum (Binance PRICE_FILTER "
                             "minPrice / maxPrice)"),
    )),
    Enum("ControlCmdType", "CONTROL_CMD.cmd", (
        ("STATUS", 1, "no-op that returns state"),
        ("SESSION_START", 2, "start the session (trading may begin)"),
        ("SESSION_STOP", 3, "stop the session: cancel on stop, drain"),
        ("TRADING_ENABLE", 4, "trading ACTIVE (unless kill latched)"),
        ("TRADING_DISABLE", 5, "trading HALTED"),
        ("REDUCE_ONLY", 6, "trading REDUCING"),
        ("KILL", 7, "kill switch: cancel all, latch HALTED"),
        ("KILL_RESET", 8, "release the kill latch (state stays HALTED)"),
        ("CANCEL_ALL", 9, "cancel all open orders (instrument 0 = every instrument)"),
        ("SET_LIMIT", 10, "set risk limit arg0 of instrument to arg1"),
        ("SET_PARAM", 11, "set strategy parameter arg0 to arg1 (config update)"),
        ("RECORDS_HALT", 12, "made by the harness: the records ring was full, halt trading (journaled, so replay agrees)"),
        ("DISK_HALT", 13, "made by the harness: the record writer reported its disk low (arg0 1: REDUCING) or "
                          "full (arg0 2 halt, 3 writer stopped: cancel all, HALTED); arg1 = free bytes; journaled"),
        ("RECOVER", 14, "made by a restarted harness after rebuilding the core from the journal: arg0 = session "
                        "epoch (client order ids continue at epoch << 40), arg1 = orders-ring position; enter "
                        "RECOVERING and ask the venue for the status of every open order; journaled"),
        ("STOP_UNRESOLVED", 15, "made by the harness at the end of its stop drain: every order still open ends "
                                "UNKNOWN (exec_type STOP_UNRESOLVED); journaled"),
    )),
    Enum("ControlStatus", "CONTROL_REPLY.status", (
        ("OK", 0, "applied"),
        ("ERROR", 1, "not applied; see error"),
    )),
    Enum("ControlError", "CONTROL_REPLY.error", (
        ("NONE", 0, "no error"),
        ("UNKNOWN_COMMAND", 1, "unknown command"),
        ("BAD_ARGUMENT", 2, "bad arguments"),
        ("NOT_ALLOWED", 3, "not allowed in this state"),
        ("UNKNOWN_INSTRUMENT", 4, "unknown instrument"),
    )),
    Enum("RiskLimit", "CONTROL_CMD.arg0 of SET_LIMIT", (
        ("MAX_ORDER_QTY", 1, "max order quantity (qty units)"),
        ("MAX_NOTIONAL", 2, "max order notional (price units x qty units / qty scale)"),
        ("MAX_POSITION", 3, "max absolute position (qty units)"),
        ("MAX_OPEN_ORDERS", 4, "max open orders"),
        ("PRICE_BAND_TICKS", 5, "price band in ticks around the reference (0 = off)"),
        ("MAX_LOSS", 6, "max daily loss in price units x qty (quote currency, price scale)"),
        ("SUBMIT_RATE", 7, "submits per second (token bucket refill)"),
        ("CANCEL_RATE", 8, "cancels per second (token bucket refill)"),
        ("TRADABLE", 9, "1 = tradable, 0 = not"),
        ("MAX_IN_FLIGHT", 10, "max orders pending venue ack (throttle)"),
        ("PRICE_BAND_BPS", 11, "price band in basis points around the reference (0 = off)"),
        ("SUBMIT_BURST", 12, "submit token bucket capacity"),
        ("CANCEL_BURST", 13, "cancel token bucket capacity"),
        ("MAX_LOSS_HALT", 14, "daily loss at which trading goes HALTED (REDUCING starts at MAX_LOSS)"),
        ("MIN_NOTIONAL", 15, "min order notional, price units (the venue's MIN_NOTIONAL / NOTIONAL filter; 0 = off)"),
        ("MIN_ORDER_QTY", 16, "min order quantity, qty units (the venue's LOT_SIZE minQty; 0 = off)"),
        ("MIN_PRICE", 17, "min limit price, price units (the venue's PRICE_FILTER minPrice; 0 = off)"),
        ("MAX_PRICE", 18, "max limit price, price units (the venue's PRICE_FILTER maxPrice; 0 = off)"),
    )),
    Enum("Anomaly", "ANOMALY.code", (
        ("NONE", 0, "none"),
        ("UNKNOWN_ORDER", 1, "execution event for an order the core does not know"),
        ("DUPLICATE_EXEC", 2, "execution id already applied"),
        ("ILLEGAL_TRANSITION", 3, "execution event not legal in the order's state"),
        ("FILL_AFTER_TERMINAL", 4, "fill for an order already terminal"),
        ("OVERFILL", 5, "fill beyond the order quantity"),
        ("BAD_RECORD", 6, "record with an unknown kind or version"),
        ("RECORDS_FULL", 7, "records ring full: trading halted"),
        ("CROSSED_BOOK", 8, "book crossed after an update"),
        ("STRATEGY_ERROR", 9, "a strategy raised (Python) or reported an error (numba / Cython error code); its intents of that call are dropped (detail = its errors so far; then its on_error policy; the message: the ANOMALY_TEXT record after it)"),
        ("INTENTS_OVERFLOW", 10, "the strategy appended more intents than the buffer holds"),
        ("VENUE_RESET", 11, "a restarted venue lost its orders: detail = how many the core ended CANCELED"),
        ("DISK_FULL", 12, "records disk low or full: detail = writer disk state (1 low, 2 halt, 3 writer stopped)"),
        ("BAD_EXEC_ID", 13, "a fill without a venue execution id (exec_id = exec_id_hi = 0): not applied"),
        ("BOOK_NO_MEMORY", 14, "the full book could not grow: level not held (detail = price), instrument unhealthy"),
        ("RECON_MISMATCH", 15, "a venue's status answer contradicts the core (detail = venue cum_qty): HALTED, "
                               "never a synthetic fill"),
        ("RECON_TIMEOUT", 16, "recovery: the venue did not explain an order in time (detail = orders unexplained): HALTED"),
        ("PENDING_TIMEOUT", 17, "an order stayed pending past the timeout and its status request went unanswered: "
                                "instrument HALTED"),
        ("REJECT_STORM", 18, "N venue rejects in T seconds on an instrument (detail = rejects): throttled, then "
                             "instrument HALTED on the next storm"),
        ("STOP_UNRESOLVED", 19, "orders still open when the stop drain ended (detail = how many): they end UNKNOWN"),
    )),
    Enum("ErrorAction", "ANOMALY_TEXT.action: what a strategy's on_error policy did after the error", (
        ("CONTINUE", 0, "the call's intents dropped; the strategy is called again"),
        ("DISABLE", 1, "the strategy is not called again; its orders are canceled"),
        ("HALT", 2, "every strategy stopped, every order canceled, trading HALTED (cause 6)"),
    )),
)

# ----------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------

RECORDS = (
    Record(1, "MD_LEVEL", 64, "L2 price level update: set the level at price to qty (qty 0 deletes)", (
        F("ts_event", "i64", "ns", "venue event time"),
        F("price", "i64", "price units", "level price, fixed point"),
        F("qty", "i64", "qty units", "new total quantity at the level; 0 deletes the level"),
        F("update_id", "i64", "venue id", "venue's final update id of the message (Binance u)"),
        F("side", "u8", "enum Side", "book side"),
        F("_pad", "u8", "", "padding", 7),
    )),
    Record(2, "MD_TRADE", 64, "public trade", (
        F("ts_event", "i64", "ns", "venue trade time"),
        F("price", "i64", "price units", "trade price"),
        F("qty", "i64", "qty units", "trade quantity"),
        F("trade_id", "i64", "venue id", "venue trade id"),
        F("side", "u8", "enum Side", "aggressor side"),
        F("_pad", "u8", "", "padding", 7),
    )),
    Record(3, "MD_BBO", 64, "top of book", (
        F("ts_event", "i64", "ns", "venue event time"),
        F("bid_px", "i64", "price units", "best bid price"),
        F("bid_qty", "i64", "qty units", "best bid quantity"),
        F("ask_px", "i64", "price units", "best ask price"),
        F("ask_qty", "i64", "qty units", "best ask quantity"),
    )),
    Record(4, "MD_STATUS", 64, "feed status change for an instrument", (
        F("ts_event", "i64", "ns", "venue time if known, else ts"),
        F("update_id", "i64", "venue id", "last good update id (snapshot lastUpdateId on SNAPSHOT_BEGIN)"),
        F("detail", "i64", "", "status detail: expected id on GAP, silence in ns on STALE"),
        F("status", "u8", "enum FeedStatus", "the status"),
        F("_pad", "u8", "", "padding", 15),
    )),
    Record(5, "EXEC", 128, "execution event reported by a venue", (
        F("ts_event", "i64", "ns", "venue transaction time"),
        F("client_order_id", "i64", "id", "our order id (ClOrdID)"),
        F("orig_client_order_id", "i64", "id", "the id replaced (REPLACED / CANCEL_REJECTED of a replace), else 0"),
        F("venue_order_id", "i64", "id", "venue order id (OrderID)"),
        F("exec_id", "i64", "id", "low 64 bits of the venue execution id's 128-bit identity "
                                  "(livestack.venues.execid): a fill is applied once per (exec_id, exec_id_hi)"),
        F("price", "i64", "price units", "order price after this event"),
        F("qty", "i64", "qty units", "order quantity after this event"),
        F("last_px", "i64", "price units", "fill price (fills only)"),
        F("last_qty", "i64", "qty units", "fill quantity (fills only)"),
        F("cum_qty", "i64", "qty units", "cumulative filled quantity"),
        F("leaves_qty", "i64", "qty units", "quantity still open"),
        F("exec_type", "u8", "enum ExecType", "what happened"),
        F("side", "u8", "enum Side", "order side"),
        F("reason", "u16", "venue code", "reject / cancel-reject reason"),
        F("_pad", "u8", "", "padding", 4),
        F("exec_id_hi", "i64", "id", "high 64 bits of the venue execution id's 128-bit identity; "
                                     "exec_id = exec_id_hi = 0 means no exec id (not a fill)"),
    ), version=2),
    Record(6, "ORDER_CMD", 64, "order command dispatched to a venue (NewOrder, CancelOrder, ReplaceOrder)", (
        F("client_order_id", "i64", "id", "id of the new order (NEW, REPLACE) or of the order to cancel"),
        F("orig_client_order_id", "i64", "id", "order being replaced (REPLACE) else 0"),
        F("price", "i64", "price units", "limit price"),
        F("qty", "i64", "qty units", "order quantity"),
        F("cmd", "u8", "enum OrderCmdType", "command"),
        F("side", "u8", "enum Side", "side"),
        F("tif", "u8", "enum TimeInForce", "time in force"),
        F("ord_type", "u8", "enum OrdType", "order type"),
        F("_pad", "u8", "", "padding", 4),
    )),
    Record(7, "TIMER", 64, "timer tick: the harness was idle; ts is the tick time", (
        F("interval", "i64", "ns", "configured tick interval"),
        F("_pad", "u8", "", "padding", 32),
    )),
    Record(8, "CONTROL_CMD", 128, "operational control command, carried to the harness over a ring", (
        F("request_id", "u64", "id", "control-surface request id, echoed in the reply"),
        F("arg0", "i64", "", "first argument (SET_LIMIT: RiskLimit; SET_PARAM: parameter index)"),
        F("arg1", "i64", "", "second argument (value)"),
        F("arg2", "i64", "", "third argument (config version for SET_PARAM/SET_LIMIT)"),
        F("cmd", "u16", "enum ControlCmdType", "command"),
        F("_pad", "u8", "", "padding", 70),
    )),
    Record(9, "CONTROL_REPLY", 128, "harness reply to a control command", (
        F("request_id", "u64", "id", "request id of the command"),
        F("hseq", "u64", "count", "harness input sequence at which the command took effect"),
        F("value0", "i64", "", "result value (e.g. orders canceled)"),
        F("value1", "i64", "", "result value (e.g. trading state)"),
        F("cmd", "u16", "enum ControlCmdType", "command answered"),
        F("status", "u8", "enum ControlStatus", "ok or error"),
        F("error", "u8", "enum ControlError", "error code"),
        F("_pad", "u8", "", "padding", 68),
    )),
    Record(10, "ORDER_STATE", 128, "order lifecycle state change", (
        F("hseq", "u64", "count", "harness input sequence that caused it"),
        F("client_order_id", "i64", "id", "our order id"),
        F("venue_order_id", "i64", "id", "venue order id (0 until acknowledged)"),
        F("price", "i64", "price units", "order price"),
        F("qty", "i64", "qty units", "order quantity"),
        F("cum_qty", "i64", "qty units", "filled so far"),
        F("state", "u8", "enum OrderState", "new state"),
        F("prev_state", "u8", "enum OrderState", "previous state"),
        F("side", "u8", "enum Side", "side"),
        F("exec_type", "u8", "enum ExecType", "execution event that caused it, 0 for a dispatch"),
        F("_pad", "u8", "", "padding", 52),
    )),
    Record(11, "FILL", 128, "fill applied once per venue execution id", (
        F("hseq", "u64", "count", "harness input sequence of the execution event"),
        F("ts_event", "i64", "ns", "venue time of the fill"),
        F("client_order_id", "i64", "id", "our order id"),
        F("venue_order_id", "i64", "id", "venue order id"),
        F("exec_id", "i64", "id", "venue execution id, low 64 bits (EXEC.exec_id)"),
        F("price", "i64", "price units", "fill price"),
        F("qty", "i64", "qty units", "fill quantity"),
        F("position", "i64", "qty units", "net position after the fill"),
        F("realized_pnl", "i64", "price units x qty units", "realized PnL after the fill (scale: price x qty)"),
        F("side", "u8", "enum Side", "side"),
        F("_pad", "u8", "", "padding", 7),
        F("exec_id_hi", "i64", "id", "venue execution id, high 64 bits (EXEC.exec_id_hi)"),
        F("_pad2", "u8", "", "padding", 16),
    ), version=2),
    Record(12, "POSITION", 64, "position after a change", (
        F("net_qty", "i64", "qty units", "net position, signed"),
        F("cost", "i64", "price units x qty units", "signed cost basis of the open position (avg price = cost / net_qty)"),
        F("realized_pnl", "i64", "price units x qty units", "realized PnL"),
        F("unrealized_pnl", "i64", "price units x qty units", "unrealized PnL at the mark"),
        F("_pad", "u8", "", "padding", 8),
    )),
    Record(13, "DENIAL", 64, "intent denied (repeats of one reason on an instrument are coalesced)", (
        F("client_order_id", "i64", "id", "id the order would have had (or the target of a cancel)"),
        F("price", "i64", "price units", "intent price"),
        F("qty", "i64", "qty units", "intent quantity"),
        F("reason", "u16", "enum DenyReason", "why"),
        F("side", "u8", "enum Side", "side"),
        F("intent", "u8", "enum OrderCmdType", "intent kind"),
        F("count", "u32", "count",
          "denials this record stands for: 1 for the first of a run of one reason on the instrument; "
          "a run's repeats are counted and written as one record (the last repeat's fields) when "
          "the run ends (an order sent on the instrument, another reason, a timer, session stop)"),
        F("_pad", "u8", "", "padding", 8),
    ), version=2),
    Record(14, "TRADING_STATE", 64, "trading state transition", (
        F("hseq", "u64", "count", "harness input sequence that caused it"),
        F("state", "u8", "enum TradingState", "new state"),
        F("prev_state", "u8", "enum TradingState", "previous state"),
        F("kill_latched", "u8", "bool", "kill switch latched"),
        F("cause", "u8", "", "1 control command, 2 loss limit, 3 records ring full, 4 session stop, 5 records disk low/full, 6 strategy error (on_error = halt)"),
        F("_pad", "u8", "", "padding", 28),
    )),
    Record(15, "TELEMETRY", 128, "telemetry snapshot (counters at a point in the record stream)", (
        F("hseq", "u64", "count", "harness input sequence"),
        F("events", "u64", "count", "inputs processed"),
        F("md_events", "u64", "count", "market-data inputs"),
        F("exec_events", "u64", "count", "execution inputs"),
        F("orders_sent", "u64", "count", "order commands dispatched"),
        F("fills", "u64", "count", "fills applied"),
        F("denials", "u64", "count", "intents denied"),
        F("anomalies", "u64", "count", "anomalies recorded"),
        F("open_orders", "u64", "count", "open orders now"),
        F("ring_full", "u64", "count", "ring-full events"),
        F("_pad", "u8", "", "padding", 24),
    )),
    Record(16, "ANOMALY", 64, "surprising input recorded instead of crashing", (
        F("hseq", "u64", "count", "harness input sequence"),
        F("client_order_id", "i64", "id", "order concerned, if any"),
        F("detail", "i64", "", "detail (e.g. exec_id or the record kind)"),
        F("code", "u16", "enum Anomaly", "what"),
        F("state", "u8", "enum OrderState", "order state when it happened"),
        F("exec_type", "u8", "enum ExecType", "execution event type, if any"),
        F("_pad", "u8", "", "padding", 12),
    )),
)

#: levels one BOOK_LEVELS record carries (the rest of its 128-byte slot)
BOOK_LEVELS_PER_RECORD = 5

RECORDS += (
    Record(17, "BOOK_LEVELS", 128,
           "the core's top N levels of one instrument after a market-data input that changed them: "
           "one record per side per 5 levels (bids first, then asks; first = 0, 5, 10 ...), all "
           "from one input, consecutive in the record stream. Readers join them into book_top rows "
           "(livestack.records.booktop).", (
        F("hseq", "u64", "count", "harness input sequence of the market-data input (LAST_IN_MSG level or SNAPSHOT_END)"),
        F("ts_event", "i64", "ns", "venue time of that input"),
        F("levels", "u16", "count", "N: levels per side of the row (the core's book_top_levels)"),
        F("first", "u16", "count", "index of this chunk's first level (0 = the best)"),
        F("side", "u8", "enum Side", "BUY: bids, SELL: asks"),
        F("count", "u8", "count", "levels of this chunk that exist in the book (the rest are 0)"),
        F("_pad", "u8", "", "padding", 2),
        F("px_0", "i64", "price units", "price of level first+0 (0 past the book's end)"),
        F("qty_0", "i64", "qty units", "quantity of level first+0 (0 past the book's end)"),
        F("px_1", "i64", "price units", "price of level first+1 (0 past the book's end)"),
        F("qty_1", "i64", "qty units", "quantity of level first+1 (0 past the book's end)"),
        F("px_2", "i64", "price units", "price of level first+2 (0 past the book's end)"),
        F("qty_2", "i64", "qty units", "quantity of level first+2 (0 past the book's end)"),
        F("px_3", "i64", "price units", "price of level first+3 (0 past the book's end)"),
        F("qty_3", "i64", "qty units", "quantity of level first+3 (0 past the book's end)"),
        F("px_4", "i64", "price units", "price of level first+4 (0 past the book's end)"),
        F("qty_4", "i64", "qty units", "quantity of level first+4 (0 past the book's end)"),
    )),
)

#: bytes of text one ANOMALY_TEXT record carries (the rest of its 128-byte slot)
ANOMALY_TEXT_LENGTH = 80

RECORDS += (
    Record(18, "ANOMALY_TEXT", 128,
           "the message of the ANOMALY recorded just before it, same hseq: a strategy error's text "
           "(the Python exception as 'Type: message', or the code a numba / Cython strategy reported). "
           "Added to schema 4 without a bump: a new kind is additive.", (
        F("hseq", "u64", "count", "harness input sequence (that of the ANOMALY it explains)"),
        F("code", "u16", "enum Anomaly", "the ANOMALY's code (STRATEGY_ERROR)"),
        F("strategy", "u8", "index", "the strategy: index in the session's [[strategies]] (0 for a single [strategy])"),
        F("action", "u8", "enum ErrorAction", "what its on_error policy did"),
        F("length", "u8", "bytes", "bytes of text used (the message truncated to fit, at a utf-8 character boundary)"),
        F("_pad", "u8", "", "padding", 3),
        F("error_code", "i64", "", "the code a numba / Cython strategy reported (error(w, code)); 0 for a Python exception"),
        F("text", "u8", "utf-8", "the message, utf-8, NUL-padded", ANOMALY_TEXT_LENGTH),
    )),
)

#: ``/journal`` of a session file (schema 4): the ordered index of the consumed inputs, not a copy.
#: Entry k is the input the harness consumed at hseq = k + 1; the input itself is row ``row`` of the
#: dataset of its kind (``/md_level``, ``/exec``, ``/control_cmd``, ``/timer`` ...), where it carries the
#: JOURNAL flag. File-only (never on a ring): packed, 18 bytes, no C struct.
JOURNAL_INDEX = (
    F("seq", "u64", "count", "record-stream seq of the input (= the header seq of its row)"),
    F("row", "u64", "count", "row of the input in the dataset of its kind"),
    F("kind", "u16", "enum RecordKind", "the input's kind: its dataset is /<kind name in lower case>"),
)

RECORDS_BY_KIND = {r.kind: r for r in RECORDS}
RECORDS_BY_NAME = {r.name: r for r in RECORDS}
ENUMS_BY_NAME = {e.name: e for e in ENUMS}


def record_fields(rec: Record) -> tuple[Field, ...]:
    """Header fields followed by the record's own fields."""
    return HEADER + rec.fields


def layout(rec: Record) -> list[tuple[Field, int]]:
    """(field, offset) for every field, natural alignment, no implicit padding allowed."""
    out = []
    off = 0
    for f in record_fields(rec):
        size = TYPES[f.type][3]
        if off % size:
            raise ValueError(f"{rec.name}.{f.name}: offset {off} not aligned to {size}")
        out.append((f, off))
        off += size * f.count
    if off != rec.size:
        raise ValueError(f"{rec.name}: fields add up to {off} bytes, slot is {rec.size}")
    return out


def _check() -> None:
    kinds = {m[0]: m[1] for m in ENUMS_BY_NAME["RecordKind"].members}
    for rec in RECORDS:
        if rec.size not in (64, 128):
            raise ValueError(f"{rec.name}: slot size must be 64 or 128")
        if kinds.get(rec.name) != rec.kind:
            raise ValueError(f"{rec.name}: RecordKind enum disagrees ({kinds.get(rec.name)} != {rec.kind})")
        layout(rec)


_check()
