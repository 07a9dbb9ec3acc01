"""Binance venue (``venue.kind = "binance"``, ``market = "spot" | "usdm"``): order entry over the
WebSocket API (spot ``ws-api/v3``, USD-M ``ws-fapi/v1``), REST as fallback and for queries, the
user data stream for executions.

::

    orders.<venue> ──ORDER_CMD──▶ BinanceAdapter ──order.place / order.cancel / order.cancelReplace
                                                   (spot) / order.modify (USD-M)──▶ WS API
    exec.<venue>  ◀──EXEC──────── BinanceAdapter ◀──answers + executionReport / ORDER_TRADE_UPDATE──

Modules: ``config`` (the options Struct), ``auth`` (HMAC-SHA256 / Ed25519 signing, keys from an env
var or a 0600 file), ``codec`` (decimals, order params, error codes -> reasons, user-stream events,
exchangeInfo filters, clientOrderId scheme), ``ratelimit`` (exchangeInfo limits + headers / WS
``rateLimits``), ``transport`` (REST, WS API, event stream), ``adapter`` (``BinanceAdapter``: commands,
answers, user-stream events), ``replace`` (spot cancelReplace / USD-M modify), ``exchange_info``
(symbol filters into the session's config at start), ``reconcile`` (unknown outcomes resolved by status queries, reconnect
reconciliation, the open-orders sweep, timers: time offset, listenKey keep-alive, countdownCancelAll),
``state`` (one order at Binance), ``journal`` (option ``store_dir``: what the venue reported, so a
restarted venue process reports only what is new). Threads: the process loop (rings) and one
asyncio I/O thread.

=============  ==================================  ===========================================
ORDER_CMD      spot                                USD-M
=============  ==================================  ===========================================
NEW limit      LIMIT + GTC / IOC / FOK             LIMIT + GTC / IOC / FOK
NEW post-only  LIMIT_MAKER                         LIMIT + GTX
NEW market     MARKET                              MARKET
NEW flag       (REDUCE_ONLY ignored: spot has no   reduceOnly=true (ORDER_CMD flag REDUCE_ONLY, or
REDUCE_ONLY    position; the core checks it)       the ``reduce_only`` option for every NEW)
CANCEL         order.cancel (origClientOrderId)    order.cancel
REPLACE        order.cancelReplace STOP_ON_FAILURE order.modify (same venue order, renamed)
               (new order for qty - filled)
STATUS         order.status -> ORDER_STATUS        order.status -> ORDER_STATUS
=============  ==================================  ===========================================

``EXEC.reason`` of a reject: ``abs(Binance code)`` (-2010 -> 2010 ...; codes not named in
``codec.Reject`` are kept verbatim), local reasons 9001+ (``codec.Reject``). Execution ids: the
trade id as ``"<symbol>-<tradeId>"`` through ``livestack.venues.execid`` (128 bits). Fees and fee
asset of every fill: an EXEC FEE right after the fill (``livestack.venues.fees``: commission in 1e-8
units, asset name packed), and the ``fills_log`` JSONL. Symbol filters:
``exchange_info`` loads them into the session's config at start (instruments' tick/lot, the core's
``[risk.symbols]``), so the core denies what Binance would refuse; ``check_filters`` checks again
before sending. STATUS (the core's order-status request: recovery, pending timeouts) is answered
from ``order.status`` after reporting what the core had not been told (``reconcile``). USD-M
with ``positions_request = true``: after each STATUS burst the account's position per
instrument (``account.position``), as EXEC ORDER_STATUS reason 3, compared by the core; the
snapshot waits (``position_settle_s``, default 5 s) until the user stream brought the fills it
counts, so the core has them first. Use an account only this session trades.

Entry point (docs/CONTRACTS.md)::

    livestack.venues.binance.run_process(orders_ring, exec_ring, instruments, options, stop, md_ring=None)
"""

from __future__ import annotations


def run_process(orders_ring: str, exec_ring: str, instruments, options: dict, stop, md_ring: str | None = None):
    """Venue process entry: validate the options (:func:`config.load_options`), run a
    :class:`BinanceAdapter` over the rings until ``stop``, SIGTERM or harness death."""
    import logging

    from livestack.venues.binance.adapter import BinanceAdapter
    from livestack.venues.binance.config import load_options
    from livestack.venues.process import run_adapter_process

    import sys

    opt = load_options(options)
    # two threads share the GIL here (the ring loop and the I/O thread): hand it over in 200 us, not
    # Python's default 5 ms, or an answer waits on the loop's busy phase (bench: p50 480 -> 330 us)
    sys.setswitchinterval(0.0002)
    logging.basicConfig(level=logging.getLevelName(opt.log_level.upper()),
                        format="%(asctime)s binance %(levelname)s %(message)s")
    for noisy in ("websockets", "aiohttp"):   # their DEBUG logs carry signed request frames / URLs
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger().level))
    adapter = BinanceAdapter(instruments, opt, ring_name=orders_ring)
    loop_opts = dict(options)
    loop_opts.setdefault("idle_max_sleep_ns", opt.idle_max_sleep_ns)
    return run_adapter_process(adapter, orders_ring, exec_ring, loop_opts, stop)


def __getattr__(name):
    if name == "BinanceAdapter":
        from livestack.venues.binance.adapter import BinanceAdapter

        return BinanceAdapter
    raise AttributeError(name)
