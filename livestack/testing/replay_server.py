"""Test stand-in for Binance: replays a recorded capture over the real protocol on 127.0.0.1.

Stands in for Binance's market-data endpoints (websocket combined stream + REST depth snapshot) so
the feed process (``livestack.feeds.binance_ws``) is tested exactly as it would run against
Binance -- real sockets, reconnects, resyncs -- without leaving the machine. How faithful: the
message bytes are the venue's own (a recorded capture) and the REST snapshot is the venue book at
the cursor, as Binance's is; not modelled: rate limits, Binance's 1000/5000-level snapshot caps
(``limit`` is honoured as given), listen keys, server-side pings timing, TLS.

Endpoints (one aiohttp server, one port)::

    GET /stream?streams=btcusdt@depth@0ms/btcusdt@trade/...   websocket, combined-stream envelopes
    GET /ws/<stream>                                           websocket, same (single-stream path)
    GET /api/v3/depth?symbol=BTCUSDT&limit=1000                spot REST snapshot
    GET /fapi/v1/depth?symbol=BTCUSDT&limit=1000               USD-M REST snapshot
    POST/GET /_control/fault?kind=...&n=...&seconds=...        inject a fault now (tests)
    GET /_control/state                                        cursor, book id, connections (JSON)

The venue is *live*: one cursor walks the capture while a client is connected (at recorded pace,
optionally sped up, or as fast as the socket takes it); a client that reconnects continues where
the venue is, not at the start. The server keeps the venue's book: the capture's REST snapshot
plus every diff the cursor has passed (sent or dropped by a fault), so a REST snapshot taken after
a gap is consistent with the stream, as Binance's is. Before the cursor passes the recorded
snapshot's ``lastUpdateId`` the recorded snapshot body is served verbatim.

Faults (``faults`` option, scheduled at a message index, or ``/_control/fault`` for *now*):

* ``drop``    -- the next ``n`` depth diffs are not sent (the venue book still moves): a gap.
* ``close``   -- close every websocket connection (the client must reconnect and resync).
* ``silence`` -- send nothing for ``seconds`` (connection stays open): the client sees staleness.
* ``garbage`` -- send ``n`` malformed messages (not JSON, missing fields, bad decimals, bad level
  arrays, unknown stream), cycling through the kinds.
* ``rest_fail`` -- the next ``n`` REST snapshot requests answer HTTP 503.

Run standalone: ``python -m livestack.testing.replay_server CAPTURE --market usdm --port 9443``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time

import orjson
from aiohttp import WSMsgType, web

from livestack.feeds.capture import is_snapshot, read_capture

GARBAGE = (
    b"this is not json",
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1,"t":1,"p":"61800.30","q":"0.006"',
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1,"t":1,"q":"0.006","m":true}}',
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1,"t":1,"p":"61800.3x","q":"0.006","m":true}}',
    b'{"stream":"btcusdt@bookTicker","data":{"u":1,"b":"1e5","B":"1","a":"2","A":"1"}}',
    b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade"}}',
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":"soon","t":1,"p":"1","q":"1","m":true}}',
)


class Fault:
    __slots__ = ("kind", "at", "n", "seconds")

    def __init__(self, kind: str, at: int = -1, n: int = 1, seconds: float = 0.0):
        if kind not in ("drop", "close", "silence", "garbage", "rest_fail"):
            raise ValueError(f"fault {kind!r}: expected drop, close, silence, garbage or rest_fail")
        self.kind, self.at, self.n, self.seconds = kind, at, n, seconds

    @classmethod
    def parse(cls, spec: str) -> "Fault":
        """``kind@index[:n|:seconds]``, e.g. ``drop@2000``, ``garbage@100:7``, ``silence@5000:1.5``."""
        kind, _, rest = spec.partition("@")
        at, _, arg = rest.partition(":")
        if kind == "silence":
            return cls(kind, int(at or -1), 1, float(arg or 1.0))
        return cls(kind, int(at or -1), int(arg or 1))

    def __repr__(self):
        return f"Fault({self.kind}@{self.at} n={self.n} s={self.seconds})"


class _Msg:
    __slots__ = ("ts", "stream", "text", "diff")

    def __init__(self, ts, stream, text, diff):
        self.ts, self.stream, self.text, self.diff = ts, stream, text, diff


class Venue:
    """The replayed venue: the message cursor, the book, and pending faults."""

    def __init__(self, path, market: str, faults=()):
        self.market = market
        self.msgs: list[_Msg] = []
        self.snapshot_body = None
        snap_seen_at = None
        for ts, raw in read_capture(path):
            if is_snapshot(raw):
                if self.snapshot_body is None:
                    self.snapshot_body = raw
                    snap_seen_at = len(self.msgs)
                continue
            try:
                j = orjson.loads(raw)
                stream = j["stream"]
                d = j["data"]
            except Exception:  # a capture line that is not an envelope is replayed as is
                self.msgs.append(_Msg(ts, "", raw.decode("utf-8", "replace"), None))
                continue
            diff = None
            if isinstance(d, dict) and d.get("e") == "depthUpdate":
                diff = (d["U"], d["u"], d.get("E", 0), d.get("T", 0), d["b"], d["a"])
            self.msgs.append(_Msg(ts, stream, raw.decode(), diff))
        if self.snapshot_body is None:
            raise ValueError(f"{path}: no REST snapshot line in the capture")
        self.snapshot_index = snap_seen_at
        snap = orjson.loads(self.snapshot_body)
        self.L0 = snap["lastUpdateId"]
        self.bids = {p: q for p, q in snap["bids"]}
        self.asks = {p: q for p, q in snap["asks"]}
        self.book_id = self.L0
        self.book_E = snap.get("E", 0)
        self.book_T = snap.get("T", 0)
        self.book_moved = False
        self.cursor = 0
        self.schedule = sorted((f for f in faults if f.at >= 0), key=lambda f: f.at)
        self.drop_next = 0
        self.rest_fail_next = 0
        self.sent = 0
        self.dropped = 0
        self.garbage_sent = 0
        self.snapshots_served = 0

    def pass_diff(self, diff) -> None:
        """Move the venue book over a diff the cursor passes (sent or dropped)."""
        U, u, E, T, b, a = diff
        if (u < self.L0) if self.market == "usdm" else (u <= self.L0):
            return
        for book, levels in ((self.bids, b), (self.asks, a)):
            for p, q in levels:
                if float(q) == 0.0:
                    book.pop(p, None)
                else:
                    book[p] = q
        self.book_id = u
        self.book_E, self.book_T = E, T
        self.book_moved = True

    def snapshot(self, limit: int) -> bytes:
        if not self.book_moved:
            return self.snapshot_body
        bids = sorted(self.bids.items(), key=lambda kv: float(kv[0]), reverse=True)[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:limit]
        body = {"lastUpdateId": self.book_id}
        if self.market == "usdm":
            body["E"] = self.book_E
            body["T"] = self.book_T
        body["bids"] = [list(x) for x in bids]
        body["asks"] = [list(x) for x in asks]
        return orjson.dumps(body)


class ReplayServer:
    """The aiohttp application around a :class:`Venue`.

    Parameters
    ----------
    path : capture file
    market : {"spot", "usdm"}
    pace : {"max", "recorded"}
    speed : float
        Recorded pace divided by this (2.0 = twice as fast).
    faults : list of Fault or str
    host, port : where to listen (port 0 picks a free one; see :attr:`port`)
    """

    def __init__(self, path, market: str = "usdm", pace: str = "max", speed: float = 1.0, faults=(),
                 host: str = "127.0.0.1", port: int = 0, heartbeat: float | None = None):
        if pace not in ("max", "recorded"):
            raise ValueError(f"pace {pace!r}: expected 'max' or 'recorded'")
        faults = [Fault.parse(f) if isinstance(f, str) else f for f in faults]
        self.venue = Venue(path, market, faults)
        self.market = market
        self.pace = pace
        self.speed = speed
        self.host = host
        self.port = port
        self.heartbeat = heartbeat
        self.connections: set = set()
        self.connects = 0
        self._silence_until = 0.0
        self._lock = asyncio.Lock()
        self._runner = None
        self._thread = None
        self._loop = None
        self._stopped = None

    # -- urls -------------------------------------------------------------------------------
    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/stream"

    @property
    def rest_url(self) -> str:
        path = "/fapi/v1/depth" if self.market == "usdm" else "/api/v3/depth"
        return f"http://{self.host}:{self.port}{path}"

    def feed_options(self, **extra) -> dict:
        """Options for ``binance_ws.run_process`` pointing at this server."""
        return {"market": self.market, "ws_url": self.ws_url, "rest_url": self.rest_url, **extra}

    # -- faults -----------------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        """Apply a fault now (call from the server's loop; see :meth:`inject_threadsafe`)."""
        v = self.venue
        if fault.kind == "drop":
            v.drop_next += fault.n
        elif fault.kind == "rest_fail":
            v.rest_fail_next += fault.n
        elif fault.kind == "silence":
            self._silence_until = time.monotonic() + fault.seconds
        elif fault.kind == "close":
            for ws in list(self.connections):
                asyncio.ensure_future(ws.close(code=1001, message=b"replay server: fault close"))
        elif fault.kind == "garbage":
            for ws in list(self.connections):
                for i in range(fault.n):
                    asyncio.ensure_future(ws.send_str(GARBAGE[(v.garbage_sent + i) % len(GARBAGE)].decode()))
            v.garbage_sent += fault.n

    def inject_threadsafe(self, fault) -> None:
        fault = Fault.parse(fault) if isinstance(fault, str) else fault
        self._loop.call_soon_threadsafe(self.inject, fault)

    # -- handlers ---------------------------------------------------------------------------
    async def _ws(self, request: web.Request):
        ws = web.WebSocketResponse(heartbeat=self.heartbeat, autoping=True, compress=False)
        await ws.prepare(request)
        if "streams" in request.query:
            streams = set(request.query["streams"].split("/"))
        else:
            streams = {request.match_info.get("stream", "")}
        self.connections.add(ws)
        self.connects += 1
        reader = asyncio.ensure_future(self._drain(ws))
        try:
            async with self._lock:  # one venue cursor: one replaying connection at a time
                await self._replay(ws, streams)
            await reader  # end of capture: keep the connection open until the client goes
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            reader.cancel()
            self.connections.discard(ws)
        return ws

    async def _drain(self, ws):
        async for msg in ws:  # answers pings (autoping); ignores client text
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break

    async def _replay(self, ws, streams):
        v = self.venue
        msgs = v.msgs
        recorded = self.pace == "recorded"
        t0_rec = msgs[v.cursor].ts if v.cursor < len(msgs) else 0
        t0 = time.monotonic()
        k = 0
        while v.cursor < len(msgs):
            if ws.closed:
                return
            i = v.cursor
            while v.schedule and v.schedule[0].at <= i:
                self.inject(v.schedule.pop(0))
                await asyncio.sleep(0)
                if ws.closed:
                    return
            now = time.monotonic()
            if self._silence_until > now:
                await asyncio.sleep(self._silence_until - now)
                t0 += self._silence_until - now  # the recorded clock stops while silent
                continue
            m = msgs[i]
            if recorded:
                due = t0 + (m.ts - t0_rec) / 1e9 / self.speed
                if due > now:
                    await asyncio.sleep(due - now)
                    if ws.closed:
                        return
            v.cursor = i + 1
            if m.diff is not None:
                v.pass_diff(m.diff)
                if v.drop_next:
                    v.drop_next -= 1
                    v.dropped += 1
                    continue
            if m.stream and m.stream not in streams:
                continue
            try:
                await ws.send_str(m.text)
            except (ConnectionResetError, RuntimeError):
                v.cursor = i  # not delivered: the next connection gets it
                return
            v.sent += 1
            k += 1
            if not recorded and (k & 63) == 0:
                await asyncio.sleep(0)  # let REST requests and control in

    async def _depth(self, request: web.Request):
        v = self.venue
        if v.rest_fail_next:
            v.rest_fail_next -= 1
            return web.Response(status=503, text="replay server: fault rest_fail")
        try:
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            return web.Response(status=400, text="bad limit")
        if "symbol" not in request.query:
            return web.Response(status=400, text="symbol required")
        v.snapshots_served += 1
        return web.Response(body=v.snapshot(limit), content_type="application/json")

    async def _fault(self, request: web.Request):
        q = request.query
        kind = q.get("kind", "")
        try:
            f = Fault(kind, -1, int(q.get("n", "1")), float(q.get("seconds", "1.0")))
        except ValueError as e:
            return web.Response(status=400, text=str(e))
        self.inject(f)
        return web.json_response({"ok": True, "fault": repr(f)})

    async def _state(self, request: web.Request):
        return web.json_response(self.state())

    def state(self) -> dict:
        v = self.venue
        return {"cursor": v.cursor, "messages": len(v.msgs), "sent": v.sent, "dropped": v.dropped,
                "book_id": v.book_id, "connections": len(self.connections), "connects": self.connects,
                "snapshots_served": v.snapshots_served, "garbage_sent": v.garbage_sent}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/stream", self._ws)
        app.router.add_get("/ws/{stream}", self._ws)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/fapi/v1/depth", self._depth)
        app.router.add_route("*", "/_control/fault", self._fault)
        app.router.add_get("/_control/state", self._state)
        return app

    # -- lifetime ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(self.app(), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for ws in list(self.connections):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def start_in_thread(self, timeout: float = 10.0) -> "ReplayServer":
        """Serve from a daemon thread with its own event loop; returns once listening."""
        ready = threading.Event()
        self._stopped = threading.Event()
        err = []

        def main():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except Exception as e:  # report to the caller
                err.append(e)
                ready.set()
                return
            ready.set()
            try:
                loop.run_until_complete(self._wait_stopped())
                loop.run_until_complete(self.stop())
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name="replay-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("replay server did not start")
        if err:
            raise err[0]
        return self

    async def _wait_stopped(self):
        while not self._stopped.is_set():
            await asyncio.sleep(0.02)

    def stop_thread(self, timeout: float = 10.0) -> None:
        if self._stopped is not None:
            self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture")
    ap.add_argument("--market", choices=("spot", "usdm"), default="usdm")
    ap.add_argument("--pace", choices=("max", "recorded"), default="recorded")
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fault", action="append", default=[], help="kind@index[:n|:seconds]")
    a = ap.parse_args(argv)
    srv = ReplayServer(a.capture, a.market, a.pace, a.speed, a.fault, a.host, a.port)

    async def run():
        await srv.start()
        print(json.dumps({"ws_url": srv.ws_url, "rest_url": srv.rest_url}), flush=True)
        while True:
            await asyncio.sleep(3600)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
