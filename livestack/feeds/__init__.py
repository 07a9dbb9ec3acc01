"""Live Market Input Handler: one module per venue protocol, plus the simulated market.

Binance (spot and USD-M futures):

* ``binance``       -- pure decoding and Binance's local order-book procedure (``BinanceDecoder``,
                       ``BookSync``, ``Counters``); no I/O.
* ``_binance``      -- Cython: ``MdBuffer``, MD records written in place, level arrays parsed in C.
* ``binance_ws``    -- the feed process (``run_process``): websocket + REST snapshot -> md ring.
* ``capture``       -- recorded captures: ``decode_capture`` and ``replay_into_ring`` (no network).

The local Binance stand-in that replays a capture over the real protocol (for tests) lives apart,
in ``livestack.testing.replay_server``.
"""
