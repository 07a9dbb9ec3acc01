"""Websocket client transports of the feeds: ``picows`` (default) and ``websockets``.

Both deliver every received text/binary message as ``on_message(payload: bytes, ts: int)`` (ts =
``time.time_ns()`` at receipt) from the event loop thread, and give the feed ``send(bytes)`` and
``close()``. Why picows by default: it parses frames in Cython and calls the listener straight from
the protocol's ``data_received`` (no per-message future/queue), which ``bench/bench_feed.py``
measures side by side with ``websockets`` on the same messages (README, bench/results).
"""

from __future__ import annotations

import asyncio
import time

TRANSPORTS = ("picows", "websockets")


class WsSession:
    """One connection. ``await run()`` connects, calls ``on_open(self)``, delivers messages until the
    connection closes (or :meth:`close`), and returns whether anything was received."""

    def __init__(self, url: str, transport: str, on_open, on_message, *, open_timeout: float = 10.0,
                 max_size: int = 1 << 24, on_batch_end=None, listener_factory=None):
        if transport not in TRANSPORTS:
            raise ValueError(f"transport {transport!r}: expected one of {TRANSPORTS}")
        self.url = url
        self.transport = transport
        self.on_open = on_open
        self.on_message = on_message
        #: called after the last message of what one read from the socket delivered (picows:
        #: ``frame.last_in_buffer``; websockets: after every message): a feed flushes its records to
        #: the ring there, once per socket read instead of once per message, at no latency cost
        #: (nothing else is waiting to be decoded)
        self.on_batch_end = on_batch_end
        #: picows only: ``listener_factory(session)`` makes the connection's ``WSListener`` in
        #: place of the Python one below (the Binance feed's C-level listener,
        #: ``_picows_binance.BinanceFrameListener``); it must deliver what it does not handle
        #: itself to ``on_message`` and call ``on_batch_end`` like the Python one
        self.listener_factory = listener_factory
        self.open_timeout = open_timeout
        self.max_size = max_size
        self.got = False
        self._ws = None
        self._tr = None

    # -- sending ----------------------------------------------------------------------------
    async def send(self, data: bytes) -> None:
        if self._tr is not None:
            from picows import WSMsgType

            self._tr.send(WSMsgType.TEXT, data)
        elif self._ws is not None:
            await self._ws.send(data.decode())

    async def ping(self) -> None:
        if self._tr is not None:
            self._tr.send_ping()
        elif self._ws is not None:
            await self._ws.ping()

    async def close(self) -> None:
        if self._tr is not None:
            self._tr.send_close()
            self._tr.disconnect()
        elif self._ws is not None:
            await self._ws.close()

    # -- receiving --------------------------------------------------------------------------
    async def run(self) -> bool:
        if self.transport == "picows":
            return await self._run_picows()
        return await self._run_websockets()

    async def _run_websockets(self) -> bool:
        from websockets.asyncio.client import connect

        async with connect(self.url, ping_interval=None, compression=None, proxy=None, max_size=self.max_size,
                           max_queue=4096, open_timeout=self.open_timeout, close_timeout=2) as ws:
            self._ws = ws
            try:
                await self.on_open(self)
                recv = ws.recv
                on_message = self.on_message
                batch_end = self.on_batch_end
                k = 0
                while True:
                    k += 1
                    if (k & 31) == 0:
                        await asyncio.sleep(0)  # recv() does not suspend while frames are queued
                    try:
                        msg = await recv(decode=False)
                    except Exception:
                        break
                    self.got = True
                    on_message(msg, time.time_ns())
                    if batch_end is not None:
                        batch_end()
            finally:
                self._ws = None
        return self.got

    async def _run_picows(self) -> bool:
        from picows import WSListener, WSMsgType, ws_connect

        sess = self
        on_message = self.on_message
        batch_end = self.on_batch_end

        class Listener(WSListener):
            parts = None  # a fragmented message being reassembled

            def on_ws_frame(self, transport, frame):
                t = frame.msg_type
                if (t == WSMsgType.TEXT or t == WSMsgType.BINARY) and frame.fin and self.parts is None:
                    sess.got = True
                    on_message(frame.get_payload_as_bytes(), time.time_ns())
                    if batch_end is not None and frame.last_in_buffer:
                        batch_end()
                elif t in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
                    self.parts = (self.parts or []) + [frame.get_payload_as_bytes()]
                    if frame.fin:
                        data, self.parts = b"".join(self.parts), None
                        sess.got = True
                        on_message(data, time.time_ns())
                        if batch_end is not None and frame.last_in_buffer:
                            batch_end()
                elif t == WSMsgType.CLOSE:
                    transport.send_close(frame.get_close_code())
                    transport.disconnect()

        factory = Listener if self.listener_factory is None else (lambda: self.listener_factory(sess))
        tr, _ = await asyncio.wait_for(
            ws_connect(factory, self.url, enable_auto_pong=True, max_frame_size=self.max_size,
                       websocket_handshake_timeout=self.open_timeout), self.open_timeout)
        self._tr = tr
        try:
            await self.on_open(self)
            await tr.wait_disconnected()
        finally:
            self._tr = None
        return self.got
