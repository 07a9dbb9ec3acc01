"""What each process exports through its metrics block (:mod:`livestack.telemetry.procblock`).

Each process already counts what it does in its own structures (a feed's ``Counters`` object, a
venue's ``VenueCounters`` and adapter ``status_counters()``, the writer's ``counters`` dict); the
functions here map those to Prometheus names once, and :func:`start` runs the copy in the block's
mirror thread -- so a process file needs one line to be visible in ``/metrics``.

Names follow the Prometheus conventions: ``livestack_<process>_<what>[_<unit>]``, counters end in
``_total``, times in ``_seconds``, sizes in ``_bytes``, a dimension (malformed reason, feed, venue)
is a label. Full list: ``docs/metrics.md``.
"""

from __future__ import annotations

import re

import hashlib
import json
import time

from livestack.telemetry import procblock

#: feed counter name -> (metric, labels, help); the others export as livestack_feed_<name>_total
FEED_NAMES = {
    "messages": ("livestack_feed_messages_total", None, "market-data messages received"),
    "records": ("livestack_feed_records_total", None, "normalized md records produced"),
    # (the harness exports livestack_feed_gaps/stale/disconnects_total as the core saw them)
    "gaps": ("livestack_feed_sequence_gaps_total", None, "sequence gaps (MD_STATUS GAP), overflows included"),
    "snapshots": ("livestack_feed_resyncs_total", None, "book resyncs from a snapshot"),
    "reconnects": ("livestack_feed_reconnects_total", None, "reconnect attempts after a lost or failed connection"),
    "stale": ("livestack_feed_stale_periods_total", None, "stale periods detected"),
    "disconnects": ("livestack_feed_connections_lost_total", None, "connections lost"),
    "connects": ("livestack_feed_connections_total", None, "connections established"),
    "overflow_records": ("livestack_feed_dropped_records_total", None, "records dropped on a full md ring"),
}

#: venue counters that are states (0/1), not counts
VENUE_GAUGES = {"harness_lost", "replay_done", "session_active", "session_stopped", "reject_storm_active"}
VENUE_NAMES = {
    "commands": "livestack_venue_commands_total",
    "events": "livestack_venue_events_total",
    "fills": "livestack_venue_fills_total",
    "rejects": "livestack_venue_rejects_total",
    "disconnects": "livestack_venue_disconnects_total",
    "logons": "livestack_venue_logons_total",
    "md_gaps": "livestack_venue_md_gaps_total",
}


#: session-layer (FIX) stats exported by name; the framing failures go to _malformed_total{reason}
SESSION_NAMES = {
    "msgs_in": "livestack_venue_messages_received_total",
    "msgs_out": "livestack_venue_messages_sent_total",
    "connects": "livestack_venue_connections_total",
    "resend_requests_in": "livestack_venue_resend_requests_received_total",
    "resend_requests_out": "livestack_venue_resend_requests_sent_total",
    "rejects_in": "livestack_venue_session_rejects_received_total",
}
MALFORMED_REASONS = ("garbage", "bad_checksum", "bad_length", "too_long")


class _Cache:
    """Metric handles by key, registered on first use (names can appear late: a new reason)."""

    def __init__(self):
        self.m: dict = {}

    def get(self, blk, kind: str, name: str, doc: str, labels=None, scale: float = 1.0):
        key = (name, tuple(sorted((labels or {}).items())))
        h = self.m.get(key)
        if h is None:
            h = getattr(blk, kind)(name, doc, labels, scale)
            self.m[key] = h
        return h


def feed_updater(counters):
    """Updater for a feed's counters: an object with ``as_dict()`` (Binance ``Counters``), a dict,
    or a callable returning a dict."""
    cache = _Cache()
    last = {"messages": -1, "at": 0.0}

    def update(blk):
        d = counters.as_dict() if hasattr(counters, "as_dict") else dict(counters() if callable(counters)
                                                                            else counters)
        for k, v in d.items():
            if k.startswith("malformed_"):
                cache.get(blk, "counter", "livestack_feed_malformed_total", "messages rejected as malformed, by reason",
                          {"reason": k[len("malformed_"):]}).set(v)
                continue
            name, labels, doc = FEED_NAMES.get(k, (f"livestack_feed_{k}_total", None, f"feed counter {k}"))
            cache.get(blk, "counter", name, doc, labels).set(v)
        msgs = d.get("messages", d.get("records", 0))
        if msgs != last["messages"]:
            last["messages"], last["at"] = msgs, time.time()
        cache.get(blk, "gauge", "livestack_feed_last_message_timestamp_seconds",
                  "wall time the feed last received a message (mirror resolution)", scale=1e-3).set(
                      int(last["at"] * 1e3))

    return update


def _metric_word(k) -> str:
    """``k`` as a Prometheus metric-name fragment ([a-zA-Z0-9_], not starting with a digit)."""
    w = re.sub(r"[^a-zA-Z0-9_]", "_", str(k))
    return w if w and not w[0].isdigit() else f"n{w}"


def venue_updater(counters, adapter=None):
    """Updater for a venue process: ``VenueCounters`` plus the adapter's ``status_counters()`` and
    ``rate_limits()`` (``{limit: (used, max)}``) when it has them."""
    cache = _Cache()

    def update(blk):
        d = dict(counters.as_dict())
        if adapter is not None and hasattr(adapter, "status_counters"):
            d.update({f"session_{k}" if k in ("rejects",) else k: v for k, v in adapter.status_counters().items()})
        for k, v in d.items():
            if k in VENUE_GAUGES:
                cache.get(blk, "gauge", f"livestack_venue_{k}", f"venue state {k} (0/1)").set(v)
            elif "." in str(k):  # "<counter>.<reason>" (e.g. the Binance adapter's rejects.UNKNOWN_ORDER, error.-2022)
                head, _, reason = str(k).partition(".")
                cache.get(blk, "counter", f"livestack_venue_{_metric_word(head)}_by_reason_total",
                          f"venue counter {head}, by reason", {"reason": reason}).set(v)
            else:
                cache.get(blk, "counter", VENUE_NAMES.get(k, f"livestack_venue_{_metric_word(k)}_total"),
                          f"venue counter {k}").set(v)
        sess = getattr(adapter, "session", None)
        st = getattr(sess, "stats", None)
        if isinstance(st, dict):  # a session layer (FIX): traffic and malformed input by reason
            for k, name in SESSION_NAMES.items():
                if k in st:
                    cache.get(blk, "counter", name, f"venue session {k}").set(st[k])
            for reason in MALFORMED_REASONS:
                if reason in st:
                    cache.get(blk, "counter", "livestack_venue_malformed_total",
                              "inbound venue messages that could not be framed, by reason", {"reason": reason}).set(
                                  st[reason])
            for reason, v in dict(getattr(sess, "rejects_by_reason", None) or {}).items():
                cache.get(blk, "counter", "livestack_venue_rejects_sent_total",
                          "session/business rejects we sent the venue, by reason", {"reason": reason}).set(v)
        astats = getattr(adapter, "stats", None)
        if isinstance(astats, dict):
            for k, v in list(astats.items()):
                if str(k).startswith("exec_refused."):
                    cache.get(blk, "counter", "livestack_venue_exec_refused_total",
                              "execution reports refused (not turned into an EXEC), by reason",
                              {"reason": k.split(".", 1)[1]}).set(v)
        rl = getattr(adapter, "rate_limits", None)
        if callable(rl):
            for limit, (used, cap) in rl().items():
                cache.get(blk, "gauge", "livestack_venue_rate_limit_used_ratio",
                          "share of the venue's rate limit in use (0..1)", {"limit": limit}, 1e-6).set(
                              int(1e6 * used / cap) if cap else 0)

    return update


class WriterStats:
    """What the writer process measures for metrics beyond its ``counters`` dict: fsync latency."""

    def __init__(self):
        self.fsync_ns_sum = 0
        self.fsync_ns_max = 0
        self.fsync_ns_last = 0
        self.nats = None  # the writer's jetstream.RecordPublisher, when [writer.nats] is on


def writer_updater(ring_writer, stats: WriterStats | None = None):
    cache = _Cache()

    def update(blk):
        w = ring_writer.writer
        c = dict(w.counters) if w is not None else {}
        for k, v in c.items():
            if k == "writer_starts":
                cache.get(blk, "gauge", "livestack_writer_starts", "times a writer opened this session file").set(v)
            elif k != "records_lost_disk_full":
                cache.get(blk, "counter", f"livestack_writer_{k}_total", f"writer counter {k}").set(v)
        cache.get(blk, "counter", "livestack_writer_records_lost_total",
                  "records dropped after the records disk filled").set(ring_writer.lost)
        lag = ring_writer.lag()
        cache.get(blk, "gauge", "livestack_writer_lag_records", "records in the records ring not yet persisted").set(
            lag["lag_records"])
        cache.get(blk, "gauge", "livestack_writer_lag_seconds", "age of the oldest unpersisted record",
                  scale=1e-9).set(lag["lag_ns"])
        # (free bytes on the records disk: livestack_writer_free_bytes, in the harness's block)
        if stats is not None:
            cache.get(blk, "counter", "livestack_writer_fsync_seconds_total", "time spent in fsync",
                      scale=1e-9).set(stats.fsync_ns_sum)
            cache.get(blk, "gauge", "livestack_writer_fsync_last_seconds", "duration of the last fsync",
                      scale=1e-9).set(stats.fsync_ns_last)
            cache.get(blk, "gauge", "livestack_writer_fsync_max_seconds", "longest fsync of this writer",
                      scale=1e-9).set(stats.fsync_ns_max)
        pub = getattr(stats, "nats", None)
        if pub is not None:
            st = pub.stats
            cache.get(blk, "gauge", "livestack_writer_nats_pending_bytes",
                      "spooled record bytes not yet acknowledged by JetStream").set(pub.pending_bytes())
            cache.get(blk, "counter", "livestack_writer_nats_published_records_total",
                      "records acknowledged by JetStream").set(st["published_records"])
            cache.get(blk, "counter", "livestack_writer_nats_publish_errors_total",
                      "failed JetStream publishes (each retried)").set(st["errors"])
            cache.get(blk, "gauge", "livestack_writer_nats_connected",
                      "1 while the publisher is connected to NATS").set(st["connected"])

    return update


def control_updater(counts: dict):
    """``counts``: the control server's ``{"requests", "errors", "timeouts", ...}`` dict."""
    cache = _Cache()

    def update(blk):
        for k, v in list(counts.items()):  # requests, errors, timeouts (the harness has control_errors_total)
            name = "livestack_control_requests_total" if k == "requests" else f"livestack_control_request_{k}_total"
            cache.get(blk, "counter", name, f"control server {k}").set(v)

    return update


def config_hash(cfg: dict) -> str:
    """First 16 hex digits of the SHA-256 of the config as canonical JSON (keys sorted)."""
    text = json.dumps(cfg, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def strategy_of(cfg: dict) -> str:
    st = cfg.get("strategy") or {}
    if isinstance(st, dict):
        return str(st.get("name") or st.get("kind") or st.get("class") or "")
    return str(st)


def supervisor_block(session: str, cfg: dict):
    """The supervisor's block: ``livestack_info{version,session,config_hash,strategy} 1`` and the
    restarts of each managed process (set by the supervisor as it restarts them)."""
    from livestack import __version__

    blk = procblock.MetricsBlock.open(session, "supervisor")
    blk.gauge("livestack_info", "build and session identity (always 1)",
              {"version": __version__, "session": session, "config_hash": config_hash(cfg),
               "strategy": strategy_of(cfg)}).set(1)
    blk.gauge("livestack_supervisor_start_time_seconds", "supervisor start (seconds since the epoch)").set(
        int(time.time()))
    return blk


def start(segment: str, process: str, update, labels: dict | None = None, interval_s: float = 0.5):
    """Open the process's block in the session ``segment`` belongs to and mirror ``update`` into it.

    A feed's or venue's block and its ``feed=`` / ``venue=`` label carry the name its ring has
    (``ls.<session>.md.<name>`` / ``.exec.<name>``: the [[feeds]] / [[venues]] name, or the kind for
    the single [feed] / [venue]), so two feeds of one kind in a session keep apart (issue 16)."""
    role, _, _ = process.partition(".")
    m = re.match(r"^/?ls\.[^.]+\.(md|exec)\.(.+)$", segment or "")
    if m and role in ("feed", "venue") and labels and role in labels:
        process, labels = f"{role}.{m.group(2)}", dict(labels, **{role: m.group(2)})
    return procblock.start_mirror(segment, process, update, labels, interval_s)
