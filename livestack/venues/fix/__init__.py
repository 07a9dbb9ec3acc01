"""FIX 4.4 / 4.2 venue: order entry to any FIX venue, with a complete initiator session layer.

::

    orders.<venue> ──ORDER_CMD──▶ FixAdapter.submit ──NewOrderSingle/Cancel/Replace──▶ TCP ──▶ venue
    exec.<venue>  ◀──EXEC──────── FixAdapter.poll  ◀──ExecutionReport/CancelReject──── TCP ◀──

Modules: ``codec`` (Cython: framing, checksum, parse, encode), ``decoder`` (ExecutionReport /
OrderCancelReject -> EXEC in C, strictly: a malformed report is refused with the FIX reject and
counted, never forwarded; re-exported by ``codec``), ``session`` (FIX session protocol: logon,
heartbeats, sequence numbers persisted per session, resend/gap-fill both ways, logout, reconnect
with backoff; its persisted numbers and journal in ``store``), ``adapter`` (``FixAdapter``: the VenueAdapter of ``livestack.venues.base``). The
QuickFIX exchange of the tests and benchmarks is a test stand-in: ``livestack.testing.fix_exchange``.
The process loop is the generic one of ``livestack.venues.process`` (exec ring full: the events
wait, in order, and the loop idles with ``Backoff("backoff")`` -- never dropped);
``FixAdapter.service`` keeps the session's I/O and heartbeats going meanwhile.

Entry point (docs/CONTRACTS.md)::

    livestack.venues.fix.run_process(orders_ring, exec_ring, instruments, options, stop, md_ring=None)

``instruments``: ``livestack.config.Instrument`` list; ``Instrument.symbol`` is the FIX Symbol (55)
and ``price_decimals``/``qty_decimals`` convert Price/OrderQty/LastPx/... exactly.

``options`` (``[venue.options]`` in the ``livestack run`` config when ``venue.kind = "fix"``):

====================  ===============  ====================================================
key                   default          meaning
====================  ===============  ====================================================
host                  "127.0.0.1"      venue host
port                  9878             venue port
sender_comp_id        "LIVESTACK"      SenderCompID (49) of our messages
target_comp_id        "EXCHANGE"       TargetCompID (56) of our messages
begin_string          "FIX.4.4"        BeginString (8): FIX.4.4 or FIX.4.2 (4.0-4.3 work too)
handl_inst            "1" to FIX 4.3,  HandlInst (21) on NewOrderSingle / CancelReplace
                      none in 4.4      (required up to FIX 4.3); "" never writes it
heartbeat_s           30               HeartBtInt (108) we propose and keep
username, password    None             Logon Username (553) / Password (554), sent if set
store_dir             "fix-store"      directory of the sequence-number store (per session:
                                       ``<BeginString>-<Sender>-<Target>.seqnums`` / ``.sent``)
store_fsync           False            fsync the store on every change
reset_on_logon        False            Logon with ResetSeqNumFlag=Y (both sides start at 1)
on_seq_too_low        "logout"         peer's Logon MsgSeqNum below what we expect, without
                                       ResetSeqNumFlag (it reset; e.g. QuickFIX
                                       ResetOnLogon=Y): "logout" = Logout, reconnect with
                                       backoff, stop after ``seq_too_low_retries`` in a row
                                       (``stats["stopped_by_policy"]``, the reason names
                                       the fix); "reset" = follow the peer's number
seq_too_low_retries   3                see on_seq_too_low
test_request_timeout  heartbeat_s      answer time allowed to our TestRequest, then
_s                                     disconnect + reconnect (``test_request_timeouts``)
resend_timeout_s      2 * heartbeat_s  our ResendRequest's gap still open after this:
                                       Logout, reconnect (``resend_timeouts``)
reject_storm_count,   20, 5.0          this many REJECTED events within this window is a
reject_storm_window_s                  reject storm: adapter ``stats["reject_storms"]``
                                       (count) and ``stats["reject_storm_active"]`` (0/1)
                                       -- all venue status in
                                       ``FixAdapter.status_counters()``
reconnect_min_s       0.5              first reconnect delay; doubles on each failure ...
reconnect_max_s       10.0             ... up to this; back to min after a Logon
logon_timeout_s       5.0              no Logon answer in this time: disconnect, retry
logout_timeout_s      2.0              bound on waiting for the Logout answer at stop
connect_timeout_s     5.0              TCP connect timeout
stale_order_s         5.0              a command waiting for the session longer than this is
                                       rejected locally (EXEC REJECTED, reason 3002)
status_unsupported    "cancel"         a peer that refuses OrderStatusRequest (35=H, sent for the
                                       core's STATUS commands: recovery, pending timeouts): "cancel"
                                       the order by ClOrdID, or "none" (the core escalates)
mass_status           false            the peer supports OrderMassStatusRequest (35=AF): a burst of
                                       STATUS commands (a recovery) is one AF; orders the answer
                                       does not list get their own 35=H (mass_status.py)
positions_request     false            the peer supports RequestForPositions (35=AN): asked with
                                       each STATUS burst; the core compares every instrument's
                                       position with its own, a difference halts (positions.py)
account               sender_comp_id   Account (1) of RequestForPositions
test_request_factor   1.2              TestRequest after heartbeat_s * this of silence
max_body              1048576          largest BodyLength accepted (bigger: resynchronise)
log_level             "INFO"           logging level of the venue process
harness_pid, batch,   (process loop)   see ``livestack.venues.process.run_loop``
counters, ...
====================  ===============  ====================================================
"""

from __future__ import annotations


def run_process(orders_ring: str, exec_ring: str, instruments, options: dict, stop, md_ring: str | None = None):
    """Venue process entry: run a :class:`FixAdapter` over the orders/exec rings until ``stop``
    is set, SIGTERM arrives or the harness dies. ``md_ring`` is unused (FIX order entry carries no
    market data). Returns the loop's counters."""
    import logging

    from livestack.venues.fix.adapter import FixAdapter
    from livestack.venues.process import run_adapter_process

    logging.getLogger("livestack.venues.fix").setLevel(str(options.get("log_level", "INFO")).upper())
    if not logging.getLogger().handlers:  # outside a supervisor (livestack.logs): a plain format
        logging.basicConfig(format="%(asctime)s fix %(levelname)s %(message)s")
    adapter = FixAdapter(instruments, options)
    return run_adapter_process(adapter, orders_ring, exec_ring, options, stop)


def __getattr__(name):
    if name == "FixAdapter":
        from livestack.venues.fix.adapter import FixAdapter

        return FixAdapter
    raise AttributeError(name)
