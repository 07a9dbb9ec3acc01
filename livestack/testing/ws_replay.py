"""A local websocket venue that replays a recorded capture (any format ``capture verify`` reads) to
each client on 127.0.0.1, for the OKX / Kraken feed tests and ``bench_feed``.

The first message a client sends (its subscribe) starts the replay of the capture's received
messages, in order, as fast as the socket takes them. Every message clients send is kept in
:attr:`received`. A later subscribe (the feed resubscribing after a checksum mismatch) is answered
with ``resync`` (e.g. a fresh snapshot), as the venue would. ``run in a thread``: ``with
WsReplay(path) as srv: srv.url``.
"""

from __future__ import annotations

import asyncio
import threading

from livestack.feeds.capture import read_capture


class WsReplay:
    def __init__(self, capture=None, messages=None, resync=(), host: str = "127.0.0.1", port: int = 0):
        self.messages = [m for _, m in read_capture(capture)] if capture is not None else list(messages or [])
        self.resync = list(resync)
        self.host, self.port = host, port
        self.received: list[bytes] = []
        self.sent = 0
        self._loop = None
        self._thread = None
        self._ready = threading.Event()
        self._server = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    async def _handler(self, ws):
        started = False
        unsubscribed = False
        task = None

        async def replay(msgs):
            for m in msgs:
                await ws.send(m.decode())
                self.sent += 1

        try:
            async for msg in ws:
                data = msg.encode() if isinstance(msg, str) else msg
                self.received.append(data)
                if data == b"ping":
                    await ws.send("pong")
                elif b"unsubscribe" in data:
                    unsubscribed = True
                elif not started:
                    started = True
                    task = asyncio.ensure_future(replay(self.messages))
                elif unsubscribed and b"subscribe" in data:
                    unsubscribed = False
                    if task is not None:
                        await task
                    await replay(self.resync)
        except Exception:
            pass
        finally:
            if task is not None:
                task.cancel()

    def _main(self):
        from websockets.asyncio.server import serve

        async def go():
            async with serve(self._handler, self.host, self.port, compression=None, max_size=1 << 24) as srv:
                self._server = srv
                self.port = srv.sockets[0].getsockname()[1]
                self._ready.set()
                await self._stop.wait()

        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._loop.run_until_complete(go())
        self._loop.close()

    def __enter__(self):
        self._thread = threading.Thread(target=self._main, daemon=True, name="ws-replay")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("ws replay server did not start")
        return self

    def __exit__(self, *exc):
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
