"""Test stand-ins (not the product): local things that play the part of something real in tests and benchmarks.

Nothing here is part of the trading path. Each module says in its docstring what real thing it
stands in for and how faithful it is; users may import them in their own tests.

* ``fix_exchange`` -- a FIX 4.4 exchange (a real QuickFIX acceptor answering orders; fills when a
  test asks), standing in for a real FIX venue's order-entry gateway.
* ``replay_server`` -- a local Binance websocket/REST server replaying a capture.
* ``binance_exchange`` -- a protocol-faithful local Binance (spot + USD-M REST, WebSocket API,
  user data and market streams, signatures, rate limits, errors, fault injection) matching orders
  against a replayed capture; Binance's official clients work against it
  (``livestack testing binance-exchange``, docs/binance-test-exchange.md).
* ``ring_demo``, ``_ringbench`` -- ring demos and benchmark kernels.
"""
