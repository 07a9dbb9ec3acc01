"""FIX venue benchmarks: codec rates and the order round trip against a real QuickFIX acceptor.

    parse-stream:  N ExecutionReports back to back in one buffer --ExecDecoder.decode_stream-->
                   EXEC records (framing + BodyLength/CheckSum check + field scan + exact fixed
                   point, all in C; one Python call per buffer)
    parse-call:    the same messages one Python call each (ExecDecoder.decode(bytes, out, i)):
                   what the session layer pays per message on top of the C work
    parse-generic: codec.parse_message (tag/offset arrays, the session layer's view) per message
    encode-nos:    Encoder.new_order_single per message (bytes out, BodyLength/CheckSum computed)
    round-trip:    FixAdapter.submit(NEW) in this process --TCP 127.0.0.1--> QuickFIX acceptor
                   (own process, data dictionary validation on) --ExecutionReport New--> adapter
                   poll returns the ACCEPTED EXEC. One order in flight; the initiator waits in
                   select() on its socket (no spinning). Both processes share this machine's cores.
    ring-trip:     the same through the stack's path: ORDER_CMD into the orders shm ring (this
                   process) --> FIX venue process (run_process, Backoff("backoff") idle) --> QuickFIX
                   --> EXEC out of the exec ring (this process waits with Backoff("backoff")).

    python bench/bench_fix.py [--messages 200000] [--round-trips 2000] [--no-rt]

Prints a table and writes bench/results/fix.json.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import select
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

from livestack.config import Instrument  # noqa: E402
from livestack.schema import DTYPES, ExecType, OrderCmdType, OrdType, RecordKind, Side, TimeInForce  # noqa: E402
from livestack.venues.fix import codec  # noqa: E402

BTC = Instrument(1, "BTCUSDT", "fix", price_decimals=2, qty_decimals=3)
T0 = 1_704_067_201_500_000_000


def exec_reports(n: int) -> list[bytes]:
    """Realistic ERs as a venue sends them: New, partial fills, fills, in rotation."""
    enc = codec.Encoder("FIX.4.4", "EXCHANGE", "LIVESTACK")
    out = []
    for i in range(n):
        k = i % 3
        et, st = ("0", "0") if k == 0 else (("F", "1") if k == 1 else ("F", "2"))
        fields = [(37, f"O{1000000 + i // 3}"), (11, str(500000 + i // 3)), (17, f"E{i}"), (150, et), (39, st),
                  (55, "BTCUSDT"), (54, "1" if i & 4 else "2"), (38, "2.000"), (44, "61837.63")]
        if k:
            fields += [(32, "1.000"), (31, "61837.63")]
        fields += [(151, "2.000" if k == 0 else ("1.000" if k == 1 else "0")), (14, "0" if k == 0 else ("1" if k == 1 else "2")),
                   (6, "61837.63"), (60, "20240101-00:00:01.500")]
        out.append(enc.encode(b"8", i + 1, T0 + i, fields))
    return out


def best_rate(fn, count: int, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best = max(best, count / dt)
    return best


def bench_codec(n: int, repeat: int) -> dict:
    msgs = exec_reports(n)
    stream = b"".join(msgs)
    dec = codec.ExecDecoder()
    dec.add_instrument(BTC.symbol, BTC.id, BTC.price_decimals, BTC.qty_decimals)
    out = np.zeros(n, DTYPES["EXEC"])
    framed, written, bad = dec.decode_stream(stream, out)
    assert (framed, written, bad) == (n, n, 0), (framed, written, bad)
    assert (out["exec_type"][2::3] == ExecType.FILLED).all()
    res = {"messages": n, "avg_message_bytes": len(stream) / n}
    res["parse_stream_msgs_per_s"] = best_rate(lambda: dec.decode_stream(stream, out), n, repeat)

    def per_call():
        d = dec.decode
        for i, m in enumerate(msgs):
            d(m, out, i)
    res["parse_call_msgs_per_s"] = best_rate(per_call, n, repeat)

    def generic():
        p = codec.parse_message
        for m in msgs:
            p(m)
    res["parse_generic_msgs_per_s"] = best_rate(generic, n, repeat)

    enc = codec.Encoder("FIX.4.4", "LIVESTACK", "EXCHANGE")

    def encode():
        e = enc.new_order_single
        sym = b"BTCUSDT"
        for i in range(n):
            e(i + 1, T0 + i, b"123456789", sym, 1, 1, 1, 6183763 + i, 2, 12345, 3)
    res["encode_nos_msgs_per_s"] = best_rate(encode, n, repeat)
    return res


def bench_round_trip(count: int) -> dict:
    from livestack.venues.fix.adapter import FixAdapter
    from livestack.testing.fix_exchange import ExchangeProcess

    tmp = tempfile.mkdtemp(prefix="bench-fix-")
    ex = ExchangeProcess(os.path.join(tmp, "exchange"))
    ad = FixAdapter([BTC], dict(port=ex.port, sender_comp_id="LIVESTACK", target_comp_id="EXCHANGE",
                                store_dir=os.path.join(tmp, "initiator"), heartbeat_s=30))
    try:
        ad.start()
        assert ex.wait(lambda: ad.session.active and ex.logged_on(), 20, ad.session.poll), "no logon"
        cmd = np.zeros(1, DTYPES["ORDER_CMD"])
        cmd["kind"], cmd["instrument"], cmd["cmd"], cmd["side"] = RecordKind.ORDER_CMD, 1, OrderCmdType.NEW, Side.BUY
        cmd["tif"], cmd["ord_type"], cmd["price"], cmd["qty"] = TimeInForce.GTC, OrdType.LIMIT, 6183763, 1000
        out = np.zeros(8, DTYPES["EXEC"])
        lat = np.zeros(count, dtype=np.int64)
        warm = 200
        for i in range(count + warm):
            cmd["client_order_id"] = 1000 + i
            t0 = time.perf_counter_ns()
            ad.submit(cmd)
            got = 0
            deadline = time.monotonic() + 5
            while not got:
                fd = ad.session.fileno()
                if fd >= 0:
                    select.select([fd], [], [], 0.05)
                got = ad.poll(out, 0)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no ack for order {1000 + i}")
            t1 = time.perf_counter_ns()
            assert out[0]["exec_type"] == ExecType.ACCEPTED and out[0]["client_order_id"] == 1000 + i
            if i >= warm:
                lat[i - warm] = t1 - t0
        rejects = ad.session.stats["rejects_in"]
        ad.stop()
    finally:
        ex.stop()
    return {"round_trips": count, "warmup": 200, "session_rejects": rejects, **common.percentiles(lat)}


def bench_ring_trip(count: int) -> dict:
    import multiprocessing as mp

    from livestack.ipc import Backoff, Ring, new_session_id, remove_session, segment_name
    from livestack.schema import RecordKind
    from livestack.venues import fix
    from livestack.testing.fix_exchange import ExchangeProcess

    tmp = tempfile.mkdtemp(prefix="bench-fix-")
    sid = new_session_id()
    ex = ExchangeProcess(os.path.join(tmp, "exchange"))
    ctx = mp.get_context("spawn")
    orders = Ring.create(segment_name(sid, "orders.fix"), 1024, 64, RecordKind.ORDER_CMD)
    execs = Ring.create(segment_name(sid, "exec.fix"), 1024, 128, RecordKind.EXEC)
    stop = ctx.Event()
    opts = dict(port=ex.port, sender_comp_id="LIVESTACK", target_comp_id="EXCHANGE",
                store_dir=os.path.join(tmp, "initiator"), heartbeat_s=30, log_level="WARNING")
    p = ctx.Process(target=fix.run_process, args=(orders.name, execs.name, [BTC], opts, stop), daemon=True)
    p.start()
    try:
        assert ex.wait(ex.logged_on, 30), "venue process did not log on"
        cmd = np.zeros(1, DTYPES["ORDER_CMD"])
        cmd["kind"], cmd["instrument"], cmd["cmd"], cmd["side"] = RecordKind.ORDER_CMD, 1, OrderCmdType.NEW, Side.BUY
        cmd["tif"], cmd["ord_type"], cmd["price"], cmd["qty"] = TimeInForce.GTC, OrdType.LIMIT, 6183763, 1000
        out = np.zeros(4, DTYPES["EXEC"])
        lat = np.zeros(count, dtype=np.int64)
        b = Backoff("backoff")
        warm = 200
        for i in range(count + warm):
            cmd["client_order_id"] = 1000 + i
            t0 = time.perf_counter_ns()
            assert orders.write(cmd) == 0
            deadline = time.monotonic() + 5
            b.reset()
            while not execs.read(out, 1):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no ack for order {1000 + i}")
                b.idle()
            t1 = time.perf_counter_ns()
            assert out[0]["client_order_id"] == 1000 + i
            if i >= warm:
                lat[i - warm] = t1 - t0
    finally:
        stop.set()
        p.join(20)
        if p.is_alive():
            p.kill()
        ex.stop()
        orders.close()
        execs.close()
        remove_session(sid)
    return {"round_trips": count, "warmup": 200, **common.percentiles(lat)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--round-trips", type=int, default=2000)
    ap.add_argument("--no-rt", action="store_true", help="skip the QuickFIX round trip")
    a = ap.parse_args()
    c = bench_codec(a.messages, a.repeat)
    rows = [
        ["parse-stream", "ExecutionReport -> EXEC, one C call per buffer", f"{c['parse_stream_msgs_per_s'] / 1e6:.2f} M msg/s",
         f"{1e9 / c['parse_stream_msgs_per_s']:.0f} ns"],
        ["parse-call", "ExecutionReport -> EXEC, one Python call per message", f"{c['parse_call_msgs_per_s'] / 1e6:.2f} M msg/s",
         f"{1e9 / c['parse_call_msgs_per_s']:.0f} ns"],
        ["parse-generic", "parse_message (tag/offset arrays)", f"{c['parse_generic_msgs_per_s'] / 1e6:.2f} M msg/s",
         f"{1e9 / c['parse_generic_msgs_per_s']:.0f} ns"],
        ["encode-nos", "Encoder.new_order_single -> bytes", f"{c['encode_nos_msgs_per_s'] / 1e6:.2f} M msg/s",
         f"{1e9 / c['encode_nos_msgs_per_s']:.0f} ns"],
    ]
    result = {"codec": c}
    if not a.no_rt:
        rt = bench_round_trip(a.round_trips)
        result["round_trip"] = rt
        rows.append(["round-trip", "NEW -> QuickFIX (loopback, own process) -> ACCEPTED",
                     f"p50 {rt['p50_ns'] / 1e3:.0f} us", f"p99 {rt['p99_ns'] / 1e3:.0f} us"])
        rr = bench_ring_trip(a.round_trips)
        result["ring_trip"] = rr
        rows.append(["ring-trip", "orders ring -> venue process -> QuickFIX -> exec ring",
                     f"p50 {rr['p50_ns'] / 1e3:.0f} us", f"p99 {rr['p99_ns'] / 1e3:.0f} us"])
    m = common.machine()
    print(f"FIX benchmarks on {m['cpu']} ({m['cores']} cores), Python {m['python']}; "
          f"{c['messages']} ExecutionReports of {c['avg_message_bytes']:.0f} bytes, best of {a.repeat}")
    print(common.table(rows, ["case", "what", "rate", "per message"]))
    path = common.write_result("fix", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
