"""One feed, several hosts: host A's md ring is relayed to a real 3-node JetStream cluster on loopback,
host B's ``nats`` feed process writes the records into its own md ring; one NATS node is SIGKILLed
mid-session. Allowed outcome: host B's ring receives exactly the records host A's feed wrote, in
order -- none lost, none twice, no GAP status. Skips only when nats-server cannot run here."""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import time

import numpy as np
import pytest

from livestack.ipc import Ring, segment_name
from livestack.ipc.stopflag import StopFlag
from livestack.schema import SLOT64, RecordKind
from livestack.testing.natscluster import NatsCluster, NatsUnavailable, server_binary
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
_wait = functools.partial(wait_for, poll_s=0.02)
XOR = np.uint64(0x1234_5678_9ABC_DEF0)


def produce_md(ring_name: str, total: int, batch: int, pause_s: float) -> None:
    """Stand-in feed: MD_TRADE records seq 1..total with a body word derived from seq."""
    from livestack.ipc.wait import Backoff

    ring = Ring.attach(ring_name, slot_size=64, timeout=10, role="producer")
    b = Backoff("backoff")
    seq = 1
    while seq <= total:
        v = ring.claim(min(batch, total - seq + 1))
        k = len(v)
        if k == 0:
            b.idle()
            continue
        s = np.arange(seq, seq + k, dtype=np.uint64)
        v["kind"] = int(RecordKind.MD_TRADE)
        v["instrument"] = 1
        v["seq"] = s
        v["body"][:, :8] = (s ^ XOR).view(np.uint8).reshape(k, 8)
        del v
        ring.commit(k)
        seq += k
        time.sleep(pause_s)
    ring.close()


@pytest.fixture
def cluster(tmp_path):
    try:
        server_binary()
    except NatsUnavailable as e:
        pytest.skip(f"nats-server cannot run here: {e}")
    c = NatsCluster(3, str(tmp_path / "nats"))
    os.makedirs(c.workdir, exist_ok=True)
    try:
        c.start(timeout=60)
        yield c
    finally:
        c.stop()


def test_md_relayed_over_jetstream_through_a_node_kill_arrives_exactly_once_in_order(session, procs, cluster):
    from livestack.feeds import nats as natsfeed

    total = 150_000
    ring_a = Ring.create(segment_name(session, "md.a"), 1 << 14, 64)
    ring_b = Ring.create(segment_name(session, "md.nats"), 1 << 14, 64)
    ctx = mp.get_context("spawn")
    stop = StopFlag(ctx)
    opts = {"servers": cluster.urls, "feed": f"t{session.replace('-', '')}", "replicas": 3, "deliver": "all",
            "max_msg_records": 512}
    sub = ctx.Process(target=natsfeed.run_process, args=(ring_b.name, [1], opts, stop))
    rel = ctx.Process(target=natsfeed.run_relay, args=(ring_a.name, opts, stop))
    prod = ctx.Process(target=produce_md, args=(ring_a.name, total, 500, 0.002))
    for p in (sub, rel, prod):
        procs.append(p)
        p.start()
    got = []
    n = 0
    killed = False
    deadline = time.monotonic() + 240
    try:
        while n < total and time.monotonic() < deadline:
            v = ring_b.view()
            k = len(v)
            if k:
                got.append(np.array(v, copy=True))
                del v
                ring_b.release(k)
                n += k
            else:
                del v
                assert sub.is_alive() and rel.is_alive(), (sub.exitcode, rel.exitcode)
                time.sleep(0.005)
            if not killed and n >= total // 3:
                cluster.kill(2)      # a JetStream node crashes mid-session
                killed = True
        assert killed and n == total, f"received {n} of {total}"
        prod.join(60)
        stop.set()
        for p in (sub, rel):
            p.join(30)
            assert p.exitcode == 0, p.exitcode
    finally:
        ring_a.close()
        ring_b.close()
    recs = np.concatenate(got).view(SLOT64)
    assert (recs["kind"] == int(RecordKind.MD_TRADE)).all(), "a GAP status or foreign record arrived"
    seq = recs["seq"].astype(np.uint64)
    assert np.array_equal(seq, np.arange(1, total + 1, dtype=np.uint64))  # none lost, none twice, in order
    body = recs["body"][:, :8].copy().view(np.uint64).ravel()
    assert np.array_equal(body, seq ^ XOR)


def test_a_stack_with_feed_kind_nats_trades_on_md_relayed_from_another_hosts_feed(tmp_path):
    """Host A: ``livestack md-relay`` (the sim feed → JetStream); host B: ``Supervisor`` with
    ``feed.kind = "nats"``: its harness consumes the relayed market data."""
    import io
    import subprocess
    import sys

    from livestack.ipc import shm
    from livestack.node import config
    from livestack.node.supervisor import Supervisor

    try:
        server_binary()
    except NatsUnavailable as e:
        pytest.skip(f"nats-server cannot run here: {e}")
    with NatsCluster(1, str(tmp_path / "nats")) as c:
        env = dict(os.environ, PYTHONPATH=os.getcwd())
        relay = subprocess.Popen([sys.executable, "-c", "import sys; from livestack.cli import main; sys.exit(main())",
                                  "md-relay", "--to", c.urls[0], "--feed-name", "simhost", "--seconds", "120"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        sup = Supervisor(config.validate({
            "session": {"records_dir": str(tmp_path / "records"), "status_interval_s": 0.0},
            "feed": {"kind": "nats", "options": {"servers": c.urls, "feed": "simhost", "deliver": "all"}}}),
            out=io.StringIO())
        try:
            sup.start()
            _wait(lambda: (sup.poll() or True) and sup.status()["md"] > 2000 and relay.poll() is None, 120,
                  "the harness to consume 2000 relayed md records")
            snap = sup.status().get("telemetry") or {}
            assert snap.get("counters", {}).get("md_events", 0) > 0
        finally:
            sup.stop(timeout=20)
            relay.terminate()
            out = relay.communicate(timeout=30)[0].decode(errors="replace")
        assert "md-relay: sim feed" in out, out
        assert shm.list_segments(sup.session) == []
