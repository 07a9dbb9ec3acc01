"""Websocket transports side by side on the same messages, and the OKX / Kraken decoders (used by
``bench_feed.py``; ``python bench/feed_transports.py`` runs only these).

transports: one server process (picows, the fastest sender here, so the client is what is
measured) sends the real Binance USD-M capture's stream messages (93,953 depth/trade/bookTicker
messages, no REST snapshot) as fast as it can to each client connection in turn; the client, in this
process, runs the feed's own ``livestack.feeds.ws_transport.WsSession`` and either only counts the
messages (``raw``: the transport ceiling) or also decodes every message with ``BinanceDecoder`` and
writes the records into a 64-byte shared-memory ring (``decode->ring``: what the feed process does).
Rate = messages / (end of last read - end of first read) at the client (see ``_client``); best
of ``repeat``. ``decode->ring`` on picows runs the feed's C-level listener
(``livestack.feeds._picows_binance``); ``decode->ring, Python listener`` the Python one it replaced.

decoders: ``OkxDecoder`` / ``KrakenDecoder`` on generated sessions with a checksum on every book
message (``livestack.testing.l2_venue``), in memory, per CPU second.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

from livestack.config import BTCUSDT_USDM  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def _serve(path, conns: int, port_q, done) -> None:
    """Server process: send every stream message of ``path`` to each of ``conns`` connections."""
    from picows import WSListener, WSMsgType, ws_create_server

    from livestack.feeds.capture import is_snapshot, read_capture

    msgs = [m for _, m in read_capture(path) if not is_snapshot(m)]

    class L(WSListener):
        def on_ws_connected(self, transport):
            send = transport.send
            for m in msgs:
                send(WSMsgType.TEXT, m)
            transport.send_close()
            transport.disconnect(graceful=True)

    async def main():
        srv = await ws_create_server(lambda req: L(), "127.0.0.1", 0)
        port_q.put(srv.sockets[0].getsockname()[1])
        while not done.is_set():
            await asyncio.sleep(0.05)
        srv.close()

    asyncio.run(main())


def _client(url: str, transport: str, mode: str, n_expected: int, snapshot, ring, c_listener: bool = True):
    """One connection; returns (messages/s wall, messages/s of this process's CPU, records).

    Every mode is timed the same way, at the end of each socket read (``on_batch_end``): the clock
    starts at the end of the first read, whose messages are left out, and stops at the end of the
    last. ``raw`` only counts; ``decode->ring`` decodes and writes the records to the ring once per
    read, as the feed does, through the C-level listener the feed runs (``c_listener``) or through
    the Python one.
    """
    from livestack.feeds.binance import BinanceDecoder, Counters, MdBuffer
    from livestack.feeds.ws_transport import WsSession

    st = {"n": 0, "n_first": 0, "t0": 0, "t1": 0, "c0": 0, "c1": 0, "seq": 1, "records": 0}
    cpu = time.process_time_ns
    c_path = mode != "raw" and transport == "picows" and c_listener  # what the feed runs (binance_ws)

    class _N:  # message counts of the C path land here; st["n"] counts the Python path
        messages = records = 0

    cnt = _N()
    out = dec = None
    if mode == "raw":
        def on_message(msg, ts):
            st["n"] += 1
    else:
        out = MdBuffer(1 << 16)
        dec = BinanceDecoder([BTCUSDT_USDM], "usdm", out, Counters())
        dec.on_snapshot("BTCUSDT", snapshot[1], snapshot[0])
        on_dec = dec.on_message

        def on_message(msg, ts):
            st["n"] += 1
            on_dec(msg, ts)

    def batch_end():
        if st["t0"] == 0:
            st["t0"] = time.perf_counter_ns()
            st["c0"] = cpu()
            st["n_first"] = st["n"] + cnt.messages
        if out is not None and out.n:  # what the feed does: records to the ring once per socket read
            k = out.write_to(ring, st["seq"], 0)
            st["seq"] += k
            st["records"] += k
            out.clear()
        st["t1"] = time.perf_counter_ns()
        st["c1"] = cpu()

    async def on_open(sess):
        pass

    factory = None
    if c_path:
        from livestack.feeds._picows_binance import BinanceFrameListener

        factory = lambda sess: BinanceFrameListener(dec._fast, out, on_message, batch_end, cnt, sess)  # noqa: E731

    async def go():
        s = WsSession(url, transport, on_open, on_message, on_batch_end=batch_end, listener_factory=factory)
        await asyncio.wait_for(s.run(), 120)

    asyncio.run(go())
    st["n"] += cnt.messages
    assert st["n"] == n_expected, (transport, mode, st["n"], n_expected)
    n = st["n"] - st["n_first"]
    return n / ((st["t1"] - st["t0"]) / 1e9), n / (max(st["c1"] - st["c0"], 1) / 1e9), st["records"]


def bench_transports(path, repeat: int = 3) -> dict:
    import numpy as np

    from livestack.feeds.capture import is_snapshot, read_capture
    from livestack.ipc import Ring, new_session_id, remove_session, segment_name

    lines = read_capture(path)
    snapshot = next((ts, m) for ts, m in lines if is_snapshot(m))
    n = sum(1 for _, m in lines if not is_snapshot(m))
    modes = [(t, m) for m in ("raw", "decode->ring") for t in ("websockets", "picows")]
    modes.append(("picows", "decode->ring, Python listener"))
    ctx = mp.get_context("spawn")
    port_q, done = ctx.Queue(), ctx.Event()
    srv = ctx.Process(target=_serve, args=(str(path), repeat * len(modes), port_q, done), daemon=True)
    srv.start()
    sid = new_session_id()
    res = {f"{t} {m}": [] for t, m in modes}
    res_cpu = {f"{t} {m}": [] for t, m in modes}
    try:
        url = f"ws://127.0.0.1:{port_q.get(timeout=60)}/"
        ring = Ring.create(segment_name(sid, "md.bench"), 1 << 20, 64)
        buf = np.zeros(1 << 16, dtype=ring.dtype)
        try:
            for _ in range(repeat):
                for t, m in modes:
                    rate, crate, recs = _client(url, t, m.split(",")[0], n, snapshot, ring,
                                                c_listener="Python" not in m)
                    res[f"{t} {m}"].append(rate)
                    res_cpu[f"{t} {m}"].append(crate)
                    while ring.read(buf):  # drain what decode->ring wrote (the consumer's part, untimed)
                        pass
        finally:
            ring.close()
    finally:
        done.set()
        srv.join(10)
        if srv.is_alive():
            srv.kill()
        remove_session(sid)
    best = {k: max(v) for k, v in res.items()}
    best_cpu = {k: max(v) for k, v in res_cpu.items()}
    out = {"messages": n, "repeat": repeat, "best_msgs_per_s": best, "runs_msgs_per_s": res,
           "best_msgs_per_client_cpu_s": best_cpu, "runs_msgs_per_client_cpu_s": res_cpu}
    for t in ("websockets", "picows"):
        out[f"{t}_decode_vs_own_raw"] = best[f"{t} decode->ring"] / best[f"{t} raw"]
        out[f"{t}_decode_vs_own_raw_cpu"] = best_cpu[f"{t} decode->ring"] / best_cpu[f"{t} raw"]
    out["picows_decode_vs_best_raw"] = best["picows decode->ring"] / max(best["picows raw"], best["websockets raw"])
    return out


def bench_decoders(n: int = 20_000, repeat: int = 3) -> dict:
    from livestack.config import Instrument
    from livestack.feeds.kraken import KrakenDecoder
    from livestack.feeds.okx import OkxDecoder
    from livestack.testing.l2_venue import kraken_session, okx_session

    cases = {
        "okx books (checksum every msg)": (OkxDecoder, Instrument(1, "BTC-USDT", "okx", 1, 8), okx_session(1, n, levels=400)),
        "kraken v2 book-10": (KrakenDecoder, Instrument(1, "BTC/USD", "kraken", 1, 8), kraken_session(1, n, depth=10)),
        "kraken v1 book-10": (KrakenDecoder, Instrument(1, "BTC/USD", "kraken", 1, 8), kraken_session(1, n, depth=10, v2=False)),
    }
    out = {}
    for name, (cls, inst, msgs) in cases.items():
        best = None
        for _ in range(repeat):
            dec = cls([inst])
            c0 = time.process_time_ns()
            for i, m in enumerate(msgs):
                dec.on_message(m, i)
                if (i & 255) == 255:
                    dec.out.clear()
            dt = time.process_time_ns() - c0
            assert dec.c.checksum_failed == 0 and dec.c.malformed == 0, dec.c
            best = dt if best is None else min(best, dt)
        out[name] = {"messages": len(msgs), "cpu_s": best / 1e9, "msgs_per_cpu_s": len(msgs) / (best / 1e9),
                     "checksum_ok": dec.c.checksum_ok}
    return out


def rows(tr: dict | None, decs: dict | None) -> list:
    r = []
    if tr:
        for k, v in tr["best_msgs_per_s"].items():
            r.append(["usdm", f"transport {k}, wall", tr["messages"], f"{v / 1e3:.0f}k"])
            r.append(["usdm", f"transport {k}, per client CPU s", tr["messages"],
                      f"{tr['best_msgs_per_client_cpu_s'][k] / 1e3:.0f}k"])
        for t in ("picows", "websockets"):
            r.append(["usdm", f"{t} decode->ring / {t} raw (wall | CPU)", "",
                      f"{tr[t + '_decode_vs_own_raw'] * 100:.0f}% | {tr[t + '_decode_vs_own_raw_cpu'] * 100:.0f}%"])
    for k, v in (decs or {}).items():
        r.append(["generated", f"decoder {k}, per CPU s", v["messages"], f"{v['msgs_per_cpu_s'] / 1e3:.0f}k"])
    return r


if __name__ == "__main__":
    data = pathlib.Path(os.environ.get("LIVESTACK_DATA", str(HERE.parent.parent / "shared" / "data")))
    tr = bench_transports(data / "binance/usdm-btcusdt-20240808.gz")
    decs = bench_decoders()
    print(common.table(rows(tr, decs), ["capture", "what", "messages", "msgs/s"]))
    print(common.write_result("feed_transports", {"transports": tr, "decoders": decs, "loadavg": os.getloadavg()}))
