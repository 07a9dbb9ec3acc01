"""A writer process hammers the telemetry block through the C API while this process reads it.

Allowed outcomes, stated up front (jcstress style): every position entry read equals the writer's
pattern for one iteration k (net k, cost -k, realized 2k, unrealized 3k, mark k, ts k); every open
order entry has all of its fields equal to one k; the ``events`` counter is a multiple of
0x100000001 (both 32-bit halves equal) and never decreases; a histogram's count (sum of buckets)
never decreases. Anything else is a torn read surfacing to a reader, and fails the test.
"""

import multiprocessing as mp

from livestack.ipc import segment_name
from livestack.telemetry.block import TelemetryBlock

ITERATIONS = 20_000_000  # ~0.2 s of writes: long enough to overlap a reader on a busy machine


def _writer(name, iterations, ready, go):
    from livestack.telemetry.block import TelemetryBlock, _stress_write

    blk = TelemetryBlock.attach(name, timeout=10)
    ready.set()
    go.wait(10)
    _stress_write(blk, iterations)
    blk.close()


def test_concurrent_reader_never_sees_a_torn_entry(session, procs):
    ctx = mp.get_context("spawn")
    name = segment_name(session, "telemetry")
    blk = TelemetryBlock.create(name)
    ready, go = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_writer, args=(name, ITERATIONS, ready, go), daemon=True)
    procs.append(p)
    p.start()
    assert ready.wait(30), "writer did not attach"
    go.set()
    last_events = 0
    last_count = 0
    versions = set()
    reads = 0
    try:
        while True:
            alive = p.is_alive()
            for pos in blk.positions():
                k = pos["net_qty"]
                assert (pos["cost"], pos["realized_pnl"], pos["unrealized_pnl"], pos["mark_price"], pos["ts"]) == \
                    (-k, 2 * k, 3 * k, k, k), pos
                versions.add(k)
            for o in blk.orders():
                k = o["client_order_id"]
                assert (o["venue_order_id"], o["price"], o["qty"], o["cum_qty"], o["ts"], o["instrument"]) == \
                    (k, k, k, k, k, 7), o
            ev = blk.counter("events")
            assert ev % 0x100000001 == 0 and ev >= last_events
            last_events = ev
            c = blk.histogram("core")["count"]
            assert c >= last_count
            last_count = c
            reads += 1
            if not alive:
                break
        p.join(30)
        assert p.exitcode == 0
        assert blk.counter("events") == ITERATIONS * 0x100000001
        assert blk.histogram("core")["count"] == ITERATIONS
        assert blk.positions()[0]["net_qty"] == ITERATIONS
        assert reads >= 2 and len(versions) >= 2  # the reader really overlapped the writer
    finally:
        blk.close()
        blk.unlink()
