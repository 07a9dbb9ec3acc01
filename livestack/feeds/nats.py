"""One feed handler, several trading hosts: normalized md records relayed over NATS JetStream.

::

    host A:  feed process ──md ring──▶ relay (run_relay)  ──JetStream LIVESTACK_MD, subject livestack.md.<feed>──┐
                                       consumer of the ring; releases                                          │
                                       a batch only once JetStream acked it                                    │
    host B:  harness ◀──md ring── feed kind "nats" (run_process) ◀── ordered consumer ◀────────────────────────┘
                                  relay-seq gap → MD_STATUS GAP per instrument (book invalid until the
                                  source's next snapshot); overlap (a relay retry) → dropped

* A message is a run of 64-byte md slots exactly as the source feed wrote them; header
  ``Ls-Seq`` is the relay sequence of its first record (the md ring's consumer position + 1: it
  continues across restarts of the source feed and of the relay) and ``Nats-Msg-Id`` is
  ``<feed>.<Ls-Seq>`` so a retried publish is deduplicated by JetStream.
* The relay never loses a record: it releases the ring only after the ack (a full ring is the
  source feed's overflow policy: GAP + resync at the source).
* The subscriber writes into its local ring with the same overflow rule as every feed: a full
  ring waits up to ``overflow_wait_ms``, then drops, marks GAP and counts it.

Options: :class:`MdRelayOptions` (``feed.options`` when ``feed.kind = "nats"``; the relay's too).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import msgspec
import numpy as np

from livestack.schema import DTYPES, SLOT64, FeedStatus, RecordKind, spec

log = logging.getLogger(__name__)


async def _on_error(e) -> None:
    """nats-py's error callback: a refused connection during an outage is expected (it retries)."""
    log.debug("nats: %s", e)

SLOT = 64
SEQ_HEADER = "Ls-Seq"


class MdRelayOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Options of the md relay (publisher) and of the ``nats`` feed kind (subscriber)."""

    servers: list[str] = []
    feed: str = "md"                        # source feed name: subject <prefix>.<feed>
    stream: str = "LIVESTACK_MD"
    subject_prefix: str = "livestack.md"
    replicas: int = 1                       # when the relay creates the stream
    max_age_s: float = 3600.0               # stream retention
    duplicate_window_s: float = 120.0
    max_msg_records: int = 1024             # records per message (64 B each)
    ack_timeout_s: float = 5.0
    retry_s: float = 0.2
    connect_timeout_s: float = 2.0
    deliver: str = "new"                    # subscriber: "new" (live) or "all" (from the stream's start)
    overflow_wait_ms: float = 200.0         # subscriber: a full local ring waits this long, then GAP
    attach_timeout_s: float = 10.0
    log_level: str = "WARNING"

    def check(self) -> list[tuple[str, str]]:
        """As ``feed.kind = "nats"`` options (the config schema, livestack.node.schema, calls it)."""
        if not self.servers:
            return [("servers", ": feed.kind = 'nats' needs the servers (nats://host:port)")]
        return []


def options(raw: dict | None) -> MdRelayOptions:
    try:
        o = msgspec.convert(raw or {}, MdRelayOptions)
    except msgspec.ValidationError as e:
        raise ValueError(f"config feed.options (nats): {e}") from None
    if o.deliver not in ("new", "all"):
        raise ValueError(f"config feed.options (nats): deliver = {o.deliver!r}: expected 'new' or 'all'")
    return o


def subject_of(o: MdRelayOptions) -> str:
    return f"{o.subject_prefix}.{o.feed}"


async def _connect(o: MdRelayOptions, stop):
    import nats

    while not stop():
        try:
            nc = await nats.connect(error_cb=_on_error, servers=o.servers, connect_timeout=o.connect_timeout_s,
                                    max_reconnect_attempts=-1, reconnect_time_wait=0.2)
            return nc, nc.jetstream(timeout=o.ack_timeout_s)
        except Exception as e:  # noqa: BLE001 - keep trying: nothing is lost meanwhile
            log.warning("nats: cannot connect (%s); retrying", e)
            await asyncio.sleep(o.retry_s)
    return None, None


# ---------------------------------------------------------------------------------------------
# publisher side
# ---------------------------------------------------------------------------------------------

async def _ensure_stream(js, o: MdRelayOptions) -> None:
    from nats.js.api import StreamConfig
    from nats.js.errors import NotFoundError

    while True:
        try:
            await js.stream_info(o.stream)
            return
        except NotFoundError:
            await js.add_stream(StreamConfig(name=o.stream, subjects=[f"{o.subject_prefix}.>"],
                                             num_replicas=o.replicas, max_age=o.max_age_s,
                                             duplicate_window=o.duplicate_window_s))
            return
        except Exception as e:  # noqa: BLE001 - no meta leader yet, a node just lost
            log.info("nats: stream %s not ready (%s); retrying", o.stream, e)
            await asyncio.sleep(o.retry_s)


async def relay(ring, o: MdRelayOptions, stop, stats: dict) -> None:
    """Publish everything committed to ``ring`` (we are its consumer) until ``stop()``."""
    from livestack.ipc.wait import Backoff

    nc, js = await _connect(o, stop)
    if js is None:
        return
    await _ensure_stream(js, o)
    subj = subject_of(o)
    # short sleeps when idle (at most 100 µs): md latency matters more than the relay's idle CPU
    backoff = Backoff("backoff", spins=20, yields=0, min_sleep_ns=5000, max_sleep_ns=100_000)
    try:
        while True:
            v = ring.view(o.max_msg_records)
            n = len(v)
            if n == 0:
                del v
                if stop():
                    return
                backoff.idle()
                await asyncio.sleep(0)
                continue
            backoff.reset()
            first = int(ring.head) + 1
            payload = v.tobytes()
            del v
            while True:
                try:
                    await js.publish(subj, payload, timeout=o.ack_timeout_s,
                                     headers={"Nats-Msg-Id": f"{o.feed}.{first}", SEQ_HEADER: str(first)})
                    break
                except Exception as e:  # noqa: BLE001 - node lost / election: same id, deduplicated
                    stats["errors"] += 1
                    log.info("nats md publish failed (%s); retrying", e)
                    await asyncio.sleep(o.retry_s)
            ring.release(n)
            stats["published"] += n
    finally:
        await nc.close()


def run_relay(md_ring: str, options: dict, stop=None) -> dict:
    """Relay process entry: consume ``md_ring`` (the local feed's output) and publish it."""
    from livestack.ipc import Ring

    o = options if isinstance(options, MdRelayOptions) else globals()["options"](options)
    logging.basicConfig(level=o.log_level)
    term = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: term.__setitem__("flag", True))
    ring = Ring.attach(md_ring, slot_size=SLOT, timeout=o.attach_timeout_s, role="consumer")
    stats = {"published": 0, "errors": 0}

    def should_stop():
        return term["flag"] or (stop is not None and stop.is_set()) and ring.size() == 0

    try:
        asyncio.run(relay(ring, o, should_stop, stats))
    finally:
        ring.close()
    return stats


# ---------------------------------------------------------------------------------------------
# subscriber side: the "nats" feed kind
# ---------------------------------------------------------------------------------------------

class Subscriber:
    """Turns relayed messages into local ring writes with relay-seq gap detection."""

    def __init__(self, ring, instruments: list[int], o: MdRelayOptions):
        self.ring, self.instruments, self.o = ring, instruments, o
        self.next_seq = 0  # relay seq expected next (0: take whatever comes first)
        self.c = {"messages": 0, "records": 0, "gaps": 0, "duplicates_dropped": 0, "overflow_records": 0,
                  "reconnects": 0}
        self._status = np.zeros(len(instruments), dtype=DTYPES["MD_STATUS"])
        self._wait_ns = int(o.overflow_wait_ms * 1e6)
        self._gap_pending = 0  # a GAP that found the ring full: written before the next records

    def on_message(self, first: int, data: bytes, now_ns: int | None = None) -> None:
        recs = np.frombuffer(data, dtype=SLOT64)
        self.c["messages"] += 1
        if self.next_seq and first < self.next_seq:  # overlap: a retried publish past dedup
            skip = min(self.next_seq - first, len(recs))
            self.c["duplicates_dropped"] += skip
            recs = recs[skip:]
            first += skip
            if not len(recs):
                return
        if self.next_seq and first > self.next_seq:
            self.gap(self.next_seq, now_ns)
        elif self._gap_pending:
            self.gap(self._gap_pending - 1, now_ns, count=False)
        self._write(recs)
        self.next_seq = first + len(recs)

    def gap(self, expected: int, now_ns: int | None = None, count: bool = True) -> None:
        """MD_STATUS GAP for every instrument: the core treats their books as invalid until resync."""
        self.c["gaps"] += count
        ts = now_ns or time.time_ns()
        s = self._status
        s["kind"] = int(RecordKind.MD_STATUS)
        s["version"] = spec.RECORDS_BY_NAME["MD_STATUS"].version
        s["instrument"] = self.instruments
        s["ts"] = ts
        s["ts_event"] = ts
        s["detail"] = expected
        s["status"] = int(FeedStatus.GAP)
        k = self.ring.write_batch(s.view(SLOT64), True)  # all or nothing
        self._gap_pending = 0 if k else expected + 1

    def _write(self, recs) -> None:
        k = self.ring.write_batch(recs)
        if k < len(recs):
            deadline = time.monotonic_ns() + self._wait_ns
            while k < len(recs) and time.monotonic_ns() < deadline:
                time.sleep(0.0002)
                k += self.ring.write_batch(recs[k:])
            if k < len(recs):
                self.c["overflow_records"] += len(recs) - k
                self.c["records"] += k
                self.gap(int(recs["seq"][k]) if "seq" in recs.dtype.names else 0)
                return
        self.c["records"] += k


async def subscribe(sub_state: Subscriber, o: MdRelayOptions, stop) -> None:
    from nats.js.api import DeliverPolicy

    nc, js = await _connect(o, stop)
    if js is None:
        return
    policy = DeliverPolicy.ALL if o.deliver == "all" else DeliverPolicy.NEW
    while not stop():
        try:
            sub = await js.subscribe(subject_of(o), stream=o.stream, ordered_consumer=True, deliver_policy=policy)
            break
        except Exception as e:  # noqa: BLE001 - stream not there yet / election
            log.info("nats md subscribe: %s; retrying", e)
            await asyncio.sleep(o.retry_s)
    else:
        await nc.close()
        return
    try:
        while not stop():
            try:
                m = await sub.next_msg(timeout=0.1)
            except asyncio.TimeoutError:
                continue
            except Exception as e:  # noqa: BLE001 - connection lost: the client reconnects
                log.info("nats md: %s", e)
                await asyncio.sleep(o.retry_s)
                continue
            first = int((m.headers or {}).get(SEQ_HEADER, 0))
            sub_state.on_message(first, m.data)
    finally:
        try:
            await sub.unsubscribe()
        except Exception:  # noqa: BLE001
            pass
        await nc.close()


def run_process(ring_name: str, instruments, options: dict, stop) -> dict:
    """Feed process entry for ``feed.kind = "nats"``: relayed md records into the local md ring."""
    from livestack.ipc import Ring

    o = globals()["options"](options)
    logging.basicConfig(level=o.log_level)
    term = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: term.__setitem__("flag", True))
    ring = Ring.attach(ring_name, slot_size=SLOT, timeout=o.attach_timeout_s, role="producer")
    ids = [int(getattr(i, "id", i)) for i in instruments]
    st = Subscriber(ring, ids, o)
    from livestack.telemetry import procmetrics  # its counters in /metrics (a mirror thread)

    metrics = procmetrics.start(ring_name, "feed.nats", procmetrics.feed_updater(st.c), {"feed": "nats"})
    try:
        asyncio.run(subscribe(st, o, lambda: term["flag"] or (stop is not None and stop.is_set())))
    finally:
        if metrics is not None:
            metrics.stop()
        ring.close()
    return st.c


# ---------------------------------------------------------------------------------------------
# `livestack md-relay`: a feed host that serves its md to trading hosts
# ---------------------------------------------------------------------------------------------

def serve_relay(cfg: dict, relay: dict, seconds: float = 0.0) -> int:
    """Run the config's feed (sim or binance) into a local md ring and relay it until SIGINT/SIGTERM
    (or ``seconds``); returns 0, or 1 when a child process failed."""
    import multiprocessing as mp

    from livestack.ipc import Ring, shm
    from livestack.ipc.stopflag import StopFlag
    from livestack.node import config as cfgmod

    kind = cfg["feed"]["kind"]
    if kind == "binance":
        from livestack.feeds import binance_ws as feedmod
    elif kind == "sim":
        from livestack.feeds import sim as feedmod
    else:
        raise ValueError(f"md-relay: feed.kind {kind!r} cannot be relayed (sim or binance)")
    o = options(relay)
    session = shm.new_session_id()
    ring = Ring.create(shm.segment_name(session, f"md.{kind}"), cfg["rings"]["md_capacity"], SLOT)
    ctx = mp.get_context("spawn")
    stop = StopFlag(ctx)
    procs = [ctx.Process(target=feedmod.run_process, args=(ring.name, cfgmod.instruments(cfg), cfg["feed"]["options"],
                                                           stop), name="livestack-feed"),
             ctx.Process(target=run_relay, args=(ring.name, msgspec.to_builtins(o), stop), name="livestack-md-relay")]
    flag = []
    old = {s: signal.signal(s, lambda *_: flag.append(1)) for s in (signal.SIGINT, signal.SIGTERM)}
    rc = 0
    try:
        for p in procs:
            p.start()
        print(f"md-relay: {kind} feed → {subject_of(o)} on {', '.join(o.servers)} (session {session})", flush=True)
        end = time.monotonic() + seconds if seconds > 0 else float("inf")
        while not flag and time.monotonic() < end and all(p.is_alive() for p in procs):
            time.sleep(0.1)
        rc = 0 if all(p.is_alive() for p in procs) else 1
    finally:
        stop.set()
        for p in procs:
            p.join(15)
            if p.is_alive():
                p.kill()
                p.join(5)
        ring.close()
        shm.remove_session(session)
        for s, h in old.items():
            signal.signal(s, h)
    return rc


def _cmd_relay(args) -> int:
    from livestack.node import config as cfgmod

    try:
        cfg = cfgmod.load(args.config)
        relay = {"servers": [s for a in args.to for s in a.split(",") if s], "feed": args.feed_name,
                 "replicas": args.replicas}
        return serve_relay(cfg, relay, args.seconds)
    except (cfgmod.ConfigError, ValueError) as e:
        print(f"livestack md-relay: {e}")
        return 2


def register(sub) -> None:
    """``livestack md-relay [CONFIG] --to nats://host:4222 [--feed-name NAME]``."""
    p = sub.add_parser("md-relay", help="run this config's feed and publish its md records to NATS JetStream "
                                         "(trading hosts use feed.kind = 'nats')")
    p.add_argument("config", nargs="?", help="TOML config (its [feed] and [[instruments]]); default: the sim feed")
    p.add_argument("--to", action="append", required=True, metavar="URL", help="nats://host:port (repeatable)")
    p.add_argument("--feed-name", default="md", help="subject livestack.md.NAME (default md)")
    p.add_argument("--replicas", type=int, default=1, help="stream replicas if the relay creates the stream")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")
    p.set_defaults(func=_cmd_relay)
