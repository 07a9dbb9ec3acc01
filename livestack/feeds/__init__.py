"""Live Market Input Handler: one module per venue protocol, plus the simulated market.

Binance (spot and USD-M futures):

* ``binance``       -- pure decoding and Binance's local order-book procedure (``BinanceDecoder``,
                       ``BookSync``, ``Counters``); no I/O.
* ``_binance``      -- Cython: ``MdBuffer``, MD records written in place, level arrays parsed in C.
* ``binance_ws``    -- the feed process (``run_process``): websocket + REST snapshot -> md ring.
* ``capture``       -- recorded captures: ``decode_capture`` and ``replay_into_ring`` (no network).

OKX and Kraken (feed kinds ``okx`` / ``kraken``), Databento (``dbn``), captures:

* ``l2book``        -- exact decimal strings, a book that keeps the strings as sent (venue checksums).
* ``okx``           -- OKX v5 ``books`` / ``books-l2-tbt`` (CRC32 of the interleaved top 25, seqId chain), trades.
* ``kraken``        -- Kraken spot ``book`` v2 and v1 (CRC32 of the top 10 strings as sent), trades.
* ``venue_ws``      -- the OKX / Kraken feed process (GAP -> resubscribe -> snapshot).
* ``ws_transport``  -- picows (default) or websockets client, shared by every websocket feed.
* ``dbn``           -- Databento MBO replay: order-by-order book -> L2 records (``databento-dbn``).
* ``capture_formats`` / ``capture_cli`` -- livestack and cryptofeed capture formats, ``livestack capture verify|convert``.
* ``registry``      -- feed kinds beyond sim/binance: entry point + options Struct validator.

The local Binance stand-in that replays a capture over the real protocol (for tests) lives apart,
in ``livestack.testing.replay_server``.
"""
