"""Per-process metrics blocks: a process registers typed counters/gauges in its own shm block; the
exporter reads every block of the session (``procblock.py``, ``procmetrics.py``)."""

import multiprocessing as mp
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from livestack.ipc import segment_name
from livestack.telemetry import procblock, procmetrics
from livestack.telemetry.block import TelemetryBlock
from livestack.telemetry.exporter import exposition
from livestack.telemetry.procblock import MetricsBlock, MetricsBlockError


def _samples(text):
    return {(x.name, tuple(sorted(x.labels.items()))): x.value
            for f in text_string_to_metric_families(text) for x in f.samples}


def test_a_block_reads_back_what_its_writer_registered_and_set(session):
    b = MetricsBlock.open(session, "feed.x", labels={"feed": "x"})
    try:
        c = b.counter("livestack_feed_malformed_total", "malformed", {"reason": 'bad "json"'})
        c.inc(3)
        c.inc()
        g = b.gauge("livestack_writer_lag_seconds", "lag", scale=1e-9)
        g.set(2_500_000)
        r = procblock.read(b.name)
        assert r["process"] == "feed.x" and r["labels"] == 'feed="x"' and r["generation"] == 1
        kinds = {m[1]: (m[0], m[2], m[4]) for m in r["metrics"]}
        assert kinds["livestack_feed_malformed_total"] == (procblock.COUNTER, 'reason="bad \\"json\\""', 4)
        assert kinds["livestack_writer_lag_seconds"][2] == pytest.approx(0.0025)
        assert procblock.session_blocks(session) == [b.name]
    finally:
        b.close()


def test_names_and_labels_are_checked():
    with pytest.raises(MetricsBlockError, match="_total"):
        procblock.MetricsBlock.__new__(MetricsBlock)._register(procblock.COUNTER, "livestack_x", "", None, 1.0)
    with pytest.raises(MetricsBlockError, match="bad metric name"):
        procblock.MetricsBlock.__new__(MetricsBlock)._register(procblock.GAUGE, "1x", "", None, 1.0)
    with pytest.raises(MetricsBlockError, match="bad label"):
        procblock.format_labels({"bad-label": 1})


def test_a_second_live_writer_is_refused_and_a_restart_keeps_slots_and_values(session):
    b = MetricsBlock.open(session, "writer")
    try:
        b.counter("livestack_writer_flushes_total", "flushes").inc(5)
        with pytest.raises(MetricsBlockError, match="another live process"):
            MetricsBlock.open(session, "writer")
    finally:
        b.close()
    b2 = MetricsBlock.open(session, "writer")  # the previous writer is gone: a restart takes over
    try:
        m = b2.counter("livestack_writer_flushes_total", "flushes")
        assert m.value == 5
        m.inc()
        r = procblock.read(b2.name)
        assert r["generation"] == 2 and len(r["metrics"]) == 1 and r["metrics"][0][4] == 6
    finally:
        b2.close()


def test_a_full_block_says_so(session):
    b = MetricsBlock.open(session, "tiny", capacity=2)
    try:
        b.gauge("livestack_a", "a")
        b.gauge("livestack_b", "b")
        with pytest.raises(MetricsBlockError, match="full"):
            b.gauge("livestack_c", "c")
    finally:
        b.close()


def _child(session, n):
    b = MetricsBlock.open(session, "venue.child", labels={"venue": "child"})
    c = b.counter("livestack_venue_commands_total", "commands")
    for _ in range(n):
        c.inc()
    b.close()


def test_another_process_writes_and_the_exporter_merges_blocks_into_families(session, procs):
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_child, args=(session, 1000))
    procs.append(p)
    p.start()
    p.join(60)
    assert p.exitcode == 0
    tel = TelemetryBlock.create(segment_name(session, "telemetry"))
    feeds = [MetricsBlock.open(session, f"feed.{f}", labels={"feed": f}) for f in ("a", "b")]
    sup = procmetrics.supervisor_block(session, {"strategy": {"name": "mm"}, "x": 1})
    try:
        for i, f in enumerate(feeds):
            procmetrics.feed_updater({"messages": 10 + i, "malformed_json": i, "gaps": 2})(f)
        text = exposition(tel)
        s = _samples(text)
        assert s[("livestack_venue_commands_total", (("venue", "child"),))] == 1000
        assert s[("livestack_feed_messages_total", (("feed", "a"),))] == 10
        assert s[("livestack_feed_messages_total", (("feed", "b"),))] == 11
        assert s[("livestack_feed_malformed_total", (("feed", "b"), ("reason", "json")))] == 1
        info = [k for k in s if k[0] == "livestack_info"]
        assert len(info) == 1
        lab = dict(info[0][1])
        assert lab["session"] == session and lab["strategy"] == "mm" and len(lab["config_hash"]) == 16
        assert lab["version"]
        if shutil.which("promtool"):
            r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    finally:
        for f in feeds:
            f.close()
        sup.close()
        tel.close()
