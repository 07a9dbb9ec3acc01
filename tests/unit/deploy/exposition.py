"""A /metrics exposition with every process's metrics present, built with the real writers: the
harness's telemetry block plus the per-process blocks filled by the real ``procmetrics`` updaters
over the real counter objects of a Binance feed, a venue, the writer, control and the supervisor."""

import types

import numpy as np

from livestack.feeds.binance import Counters
from livestack.ipc import segment_name
from livestack.schema import DenyReason, OrderState, TradingState
from livestack.telemetry import procmetrics
from livestack.telemetry.block import HISTOGRAMS, TelemetryBlock
from livestack.telemetry.exporter import exposition
from livestack.telemetry.procblock import MetricsBlock
from livestack.venues.process import VenueCounters


class _Adapter:
    session = types.SimpleNamespace(stats={"msgs_in": 9, "msgs_out": 8, "connects": 1, "garbage": 2, "bad_checksum": 1},
                                    rejects_by_reason={"session.REQUIRED_TAG_MISSING": 1})
    stats = {"rejects": 2, "exec_refused.bad_side": 1}

    def status_counters(self):
        return {"session_active": 1, "session_stopped": 0, "logons": 1, "disconnects": 0, "rejects": 2,
                "reject_storms": 0, "reject_storm_active": 0}

    def rate_limits(self):
        return {"orders_10s": (30, 300)}


def full_exposition(session: str, tmp_path) -> str:
    from livestack.records.writer import RecordWriter

    tel = TelemetryBlock.create(segment_name(session, "telemetry"))
    blocks = []
    try:
        tel.add("events", 10)
        tel.denial(DenyReason.MAX_POSITION)
        tel.order_state(OrderState.REJECTED)
        tel.set_gauge("trading_state", TradingState.ACTIVE)
        for h in HISTOGRAMS:
            tel.record_many(h, [1000, 2000])
        tel.register_instrument(0, 1, "BTCUSDT", 2, 3)
        tel.set_position(0, 1500, 150_000_000, 12_345, -500, 100_000, 0)
        tel.register_ring(0, "records", 1024)
        tel.register_process("harness")
        c = Counters()
        c.messages, c.malformed_json, c.gaps, c.snapshots, c.reconnects = 100, 1, 1, 2, 1
        b = MetricsBlock.open(session, "feed.binance", {"feed": "binance"})
        blocks.append(b)
        procmetrics.feed_updater(c)(b)
        b = MetricsBlock.open(session, "venue.fix", {"venue": "fix"})
        blocks.append(b)
        vc = VenueCounters()
        vc.add("commands", 5)
        procmetrics.venue_updater(vc, _Adapter())(b)
        w = RecordWriter(str(tmp_path / "s.h5"), {"session": session}, {})
        try:
            st = procmetrics.WriterStats()
            st.fsync_ns_sum, st.fsync_ns_last, st.fsync_ns_max = 3_000_000, 1_000_000, 2_000_000
            st.nats = types.SimpleNamespace(pending_bytes=lambda: 1280, stats={
                "published_records": 10, "errors": 0, "connected": 1})
            rw = types.SimpleNamespace(writer=w, lost=0, lag=lambda: {"lag_records": 3, "lag_ns": 5_000_000})
            b = MetricsBlock.open(session, "writer")
            blocks.append(b)
            procmetrics.writer_updater(rw, st)(b)
        finally:
            w.close()
        b = MetricsBlock.open(session, "control")
        blocks.append(b)
        procmetrics.control_updater({"requests": 4, "errors": 1, "timeouts": 0})(b)
        b = procmetrics.supervisor_block(session, {"strategy": {"name": "mm"}})
        blocks.append(b)
        b.counter("livestack_process_restarts_total", "restarts", {"process": "venue"}).set(1)
        return exposition(tel)
    finally:
        for b in blocks:
            b.close()
        tel.close()


def sample_names(text: str) -> set:
    from prometheus_client.parser import text_string_to_metric_families

    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


__all__ = ["full_exposition", "sample_names", "np"]
