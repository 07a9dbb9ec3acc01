"""Records past one host: the writer publishes every flushed batch to a NATS JetStream stream, and
``livestack records pull`` rebuilds the record set from it on another host.

::

    records ring ──▶ writer ──▶ HDF5 file (flush)            the writer never waits on the network:
                       │ on_flush(batch)                     its only added work per flush is one
                       ▼                                     append of the flushed slots to the spool
                  <file>.nats-spool  (raw 128-byte slots, append-only, local disk)
                       │ publisher thread (own asyncio loop, nats-py)
                       ▼
    JetStream stream LIVESTACK_RECORDS, subject <prefix>.<session>.<kind>   (kind: md_level, exec, ...)
      one message = consecutive records of one kind, header Nats-Msg-Id = <session>.<first seq>-<last seq>
      <prefix>.<session>.meta: the session attributes (JSON), published first

* **Never blocks, never loses.** The spool is the outbox: a NATS outage only grows it; the
  publisher retries (same message ids, so a retried publish JetStream already stored is dropped as a
  duplicate) and catches up from the spool, also after a writer restart -- its acknowledged offset
  is kept in ``<file>.nats-cursor``. A fully published spool is removed at a clean close.
* **Record identity is the record seq** (contiguous on the records ring), so ``pull`` orders by
  seq and drops any seq seen twice (a message re-cut differently after a crash), and reports holes.
  The rebuilt file holds byte-identical datasets: the same slots written in the same order through
  the same :class:`~livestack.records.writer.RecordWriter`.

Options: :class:`NatsOptions` (``[writer.nats]`` in the config).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time

import msgspec
import numpy as np

from livestack.schema import SLOT128, RecordKind

log = logging.getLogger(__name__)


async def _on_error(e) -> None:
    """nats-py's error callback: a refused connection during an outage is expected (it retries)."""
    log.debug("nats: %s", e)

SLOT = 128
META = "meta"


class NatsOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``[writer.nats]``: publish flushed record batches to JetStream (off while ``servers`` is empty)."""

    servers: list[str] = []                 # nats://host:port URLs of the cluster
    stream: str = "LIVESTACK_RECORDS"
    subject_prefix: str = "livestack.rec"   # subjects <prefix>.<session>.<kind>
    replicas: int = 1                       # stream replicas when the publisher creates the stream
    duplicate_window_s: float = 3600.0      # JetStream dedup window for Nats-Msg-Id
    max_msg_records: int = 4096             # records per message (128 B each: 512 KiB < 1 MiB max_payload)
    in_flight: int = 8                      # messages awaiting their ack at once
    ack_timeout_s: float = 5.0
    retry_s: float = 0.5                    # wait after a failed publish before retrying
    connect_timeout_s: float = 2.0
    spool_dir: str = ""                     # default: beside the session file
    keep_spool: bool = False                # keep the spool after everything was acknowledged


def options(raw: dict | None) -> NatsOptions:
    """Validate ``[writer.nats]`` (msgspec: unknown keys and wrong types are errors naming the key)."""
    try:
        return msgspec.convert(raw or {}, NatsOptions)
    except msgspec.ValidationError as e:
        raise ValueError(f"config writer.nats: {e}") from None


def kind_name(kind: int) -> str:
    try:
        return RecordKind(kind).name.lower()
    except ValueError:
        return f"kind{kind}"


def subject(prefix: str, session: str, what: str) -> str:
    return f"{prefix}.{session}.{what}"


class Spool:
    """Append-only file of 128-byte slots plus the publisher's acknowledged byte offset."""

    def __init__(self, path: str):
        self.path = path
        self.cursor_path = path[: -len(".nats-spool")] + ".nats-cursor" if path.endswith(".nats-spool") \
            else path + ".cursor"
        self._f = open(path, "ab", buffering=0)

    def append(self, slots) -> None:
        """Writer side: write the flushed slots straight from the ring's memory (no copy, no fsync:
        the HDF5 file is the durable copy), in 1 MiB pieces."""
        mv = memoryview(np.ascontiguousarray(slots).view(np.uint8).reshape(-1))
        step = 1 << 20
        for i in range(0, len(mv), step):
            part = mv[i:i + step]
            while len(part):
                part = part[self._f.write(part):]

    def size(self) -> int:
        return os.path.getsize(self.path)

    def acked(self) -> int:
        try:
            with open(self.cursor_path) as f:
                return int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def set_acked(self, off: int) -> None:
        tmp = self.cursor_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(off))
        os.replace(tmp, self.cursor_path)

    def read(self, off: int, max_records: int) -> np.ndarray:
        try:
            n = max(0, (self.size() - off) // SLOT)
        except FileNotFoundError:
            return np.zeros(0, dtype=SLOT128)
        n = min(n, max_records)
        if n == 0:
            return np.zeros(0, dtype=SLOT128)
        with open(self.path, "rb") as f:
            f.seek(off)
            buf = f.read(n * SLOT)
        return np.frombuffer(buf, dtype=SLOT128, count=len(buf) // SLOT)

    def close(self, remove: bool = False) -> None:
        self._f.close()
        if remove:
            for p in (self.path, self.cursor_path):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass


def split_by_kind(slots: np.ndarray, max_records: int):
    """``[(kind, records)]``: runs of one kind each, in order of first appearance, chunked."""
    out = []
    kinds = slots["kind"]
    for k in dict.fromkeys(kinds.tolist()):
        sel = slots[kinds == k]
        for i in range(0, len(sel), max_records):
            out.append((int(k), sel[i:i + max_records]))
    return out


class WriterExtras:
    """What the writer process runs beside writing (kept here so writer.py needs two lines): its
    metrics block (counters, lag, fsync latency) and, with ``[writer.nats]`` servers, the JetStream
    publisher fed by the flushed-batch callback ``RingWriter.on_flush``."""

    def __init__(self, records_ring: str, rw, path: str, attrs: dict, nats_raw: dict | None):
        from livestack.telemetry import procmetrics

        self.stats = procmetrics.WriterStats()
        if rw.writer is not None:
            rw.writer.fsync_stats = self.stats
        self.publisher = None
        nopts = options(nats_raw) if nats_raw else None
        if nopts is not None and nopts.servers and rw.writer is not None:
            self.publisher = RecordPublisher(str(attrs.get("session", "")), path, attrs, nopts)
            rw.on_flush = self.publisher.append
            self.stats.nats = self.publisher
        self.metrics = procmetrics.start(records_ring, "writer", procmetrics.writer_updater(rw, self.stats))

    def close(self, drain_timeout_s: float = 10.0) -> None:
        if self.publisher is not None:
            self.publisher.close(drain_timeout_s)
        if self.metrics is not None:
            self.metrics.stop()


class RecordPublisher:
    """Publishes a session's flushed record batches to JetStream from a separate process.

    ``append(slots)`` (the writer's flushed-batch callback) only appends to the spool; a spawned
    publisher process (:func:`_publisher_main`: no GIL shared with the writer) tails the spool and
    keeps its acknowledged offset in the cursor file. ``close()`` waits up to ``drain_timeout_s`` for
    the spool to be published. ``thread=True`` runs the publisher in a thread instead (tests).
    """

    def __init__(self, session: str, file_path: str, attrs: dict, opts: NatsOptions, thread: bool = False):
        import multiprocessing as mp

        self.session, self.opts = session, opts
        d = opts.spool_dir or os.path.dirname(os.path.abspath(file_path))
        os.makedirs(d, exist_ok=True)
        base = os.path.splitext(os.path.basename(file_path))[0]
        self.spool = Spool(os.path.join(d, base + ".nats-spool"))
        meta = json.dumps(attrs, default=str, sort_keys=True).encode()
        self._closed: int | None = None  # pending bytes at close
        ctx = mp.get_context("spawn")
        self._shared = ctx.Array("q", len(_SHARED), lock=False)  # published_msgs, errors, connected
        self._stop = ctx.Event()
        args = (self.spool.path, session, meta, msgspec.to_builtins(opts), self._stop, self._shared, os.getpid())
        if thread:
            self._worker = threading.Thread(target=_publisher_main, args=args, name="livestack-nats-publish",
                                            daemon=True)
        else:
            self._worker = ctx.Process(target=_publisher_main, args=args, name="livestack-nats-publish", daemon=True)
        self._worker.start()

    @property
    def stats(self) -> dict:
        acked = self.spool.acked()
        d = dict(zip(_SHARED, list(self._shared)))
        d.update(acked_bytes=acked, published_records=acked // SLOT)
        return d

    # writer side ------------------------------------------------------------------------------
    def append(self, slots) -> None:
        if len(slots):
            self.spool.append(slots)

    def pending_bytes(self) -> int:
        if self._closed is not None:
            return self._closed
        return self.spool.size() - self.spool.acked()

    def close(self, drain_timeout_s: float = 10.0) -> bool:
        """Stop after publishing what is spooled (at most ``drain_timeout_s``); True when all was.
        Anything left stays in the spool for the next publisher of this file."""
        deadline = time.monotonic() + drain_timeout_s
        while self.pending_bytes() > 0 and time.monotonic() < deadline and self._worker.is_alive():
            time.sleep(0.01)
        self._stop.set()
        self._worker.join(10)
        if isinstance(self._worker, threading.Thread) is False and self._worker.is_alive():
            self._worker.kill()
            self._worker.join(5)
        pending = self.pending_bytes()
        self.spool.close(remove=pending == 0 and not self.opts.keep_spool)
        self._closed = pending
        return pending == 0


_SHARED = ("published_msgs", "errors", "connected")


def _publisher_main(spool_path, session, meta, opts, stop, shared, parent_pid) -> None:
    """The publisher (process or thread): tail the spool, publish, persist the acked offset. Exits
    when ``stop`` is set and the spool is published, or when the writer process is gone."""
    logging.basicConfig(level=logging.WARNING)
    pub = _Publisher(spool_path, session, meta, msgspec.convert(opts, NatsOptions), stop, shared, parent_pid)
    try:
        asyncio.run(pub.main())
    except Exception:  # noqa: BLE001 - what is spooled stays for the next publisher
        log.exception("nats publisher stopped")


class _Publisher:
    def __init__(self, spool_path, session, meta, opts: NatsOptions, stop, shared, parent_pid):
        self.session, self.meta, self.opts, self.stop, self.shared = session, meta, opts, stop, shared
        self.parent_pid = parent_pid
        self.spool = Spool.__new__(Spool)  # reader: no append handle
        self.spool.path = spool_path
        self.spool.cursor_path = spool_path[: -len(".nats-spool")] + ".nats-cursor"

    def _done(self) -> bool:
        """The writer asked to stop (and all is published), or it is gone: a restarted writer starts
        its own publisher at the cursor."""
        if os.getppid() != self.parent_pid and os.getpid() != self.parent_pid:
            return True
        return self.stop.is_set()

    async def _connect(self):
        import nats

        o = self.opts
        while not self._done():
            async def down():
                self.shared[2] = 0

            async def up():
                self.shared[2] = 1

            try:
                nc = await nats.connect(error_cb=_on_error, servers=o.servers, connect_timeout=o.connect_timeout_s,
                                        max_reconnect_attempts=-1, reconnect_time_wait=0.2, allow_reconnect=True,
                                        disconnected_cb=down, reconnected_cb=up)
                js = nc.jetstream(timeout=o.ack_timeout_s)
                await self._ensure_stream(js)
                return nc, js
            except Exception as e:  # noqa: BLE001 - outage: keep trying, the spool keeps the data
                self.shared[1] += 1
                log.warning("nats: cannot connect/create stream (%s); retrying", e)
                await asyncio.sleep(o.retry_s)
        return None, None

    async def _ensure_stream(self, js) -> None:
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        o = self.opts
        try:
            await js.stream_info(o.stream)
        except NotFoundError:
            await js.add_stream(StreamConfig(name=o.stream, subjects=[f"{o.subject_prefix}.>"],
                                             num_replicas=o.replicas, duplicate_window=o.duplicate_window_s))

    async def _publish(self, js, subj: str, payload: bytes, msg_id: str) -> None:
        """Publish until acknowledged: a failure is retried with the same id (deduplicated)."""
        while True:
            try:
                await js.publish(subj, payload, timeout=self.opts.ack_timeout_s, headers={"Nats-Msg-Id": msg_id})
                self.shared[0] += 1
                return
            except Exception as e:  # noqa: BLE001 - node lost, leader election, timeout: retry
                self.shared[1] += 1
                log.info("nats publish %s failed (%s); retrying", msg_id, e)
                if os.getppid() != self.parent_pid and os.getpid() != self.parent_pid:
                    raise
                await asyncio.sleep(self.opts.retry_s)

    async def main(self) -> None:
        nc, js = await self._connect()
        if js is None:
            return
        self.shared[2] = 1
        o = self.opts
        acked = self.spool.acked()
        try:
            await self._publish(js, subject(o.subject_prefix, self.session, META), self.meta, f"{self.session}.meta")
            while True:
                chunk = self.spool.read(acked, o.max_msg_records * o.in_flight)
                if len(chunk) == 0:
                    if self._done():
                        return
                    await asyncio.sleep(0.005)
                    continue
                tasks = []
                for kind, recs in split_by_kind(chunk, o.max_msg_records):
                    seqs = recs["seq"]
                    mid = f"{self.session}.{int(seqs[0])}-{int(seqs[-1])}.{kind}"
                    tasks.append(self._publish(js, subject(o.subject_prefix, self.session, kind_name(kind)),
                                               recs.tobytes(), mid))
                await asyncio.gather(*tasks)
                acked += len(chunk) * SLOT
                self.spool.set_acked(acked)
        finally:
            try:
                await nc.close()
            except Exception:  # noqa: BLE001
                pass


# ---------------------------------------------------------------------------------------------
# pull: rebuild a record set on another host
# ---------------------------------------------------------------------------------------------

async def _fetch(servers: list[str], session: str, stream: str, prefix: str, timeout_s: float):
    import nats

    nc = await nats.connect(error_cb=_on_error, servers=servers, connect_timeout=timeout_s, max_reconnect_attempts=5)
    try:
        js = nc.jetstream(timeout=timeout_s)
        info = await js.stream_info(stream)
        if info.state.messages == 0:
            return None, []
        sub = await js.subscribe(f"{prefix}.{session}.>", stream=stream, ordered_consumer=True)
        meta, parts = None, []
        try:
            while True:
                try:
                    m = await sub.next_msg(timeout=timeout_s)
                except asyncio.TimeoutError:
                    break
                if m.subject.endswith("." + META):
                    meta = json.loads(m.data)
                else:
                    parts.append(np.frombuffer(m.data, dtype=SLOT128).copy())
                if m.metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return meta, parts
    finally:
        await nc.close()


def fetch_records(servers: list[str], session: str, stream: str = "LIVESTACK_RECORDS",
                  prefix: str = "livestack.rec", timeout_s: float = 5.0):
    """``(attrs, slots, report)``: every record of ``session`` in the stream, in record-seq order,
    each seq once; ``report`` counts messages' duplicates and the holes in the seq range."""
    for attempt in range(5):  # a node just lost: the JetStream API may time out during elections
        try:
            meta, parts = asyncio.run(_fetch(servers, session, stream, prefix, timeout_s))
            break
        except Exception as e:  # noqa: BLE001
            if attempt == 4 or type(e).__name__ not in ("TimeoutError", "NoServersError", "ServiceUnavailableError"):
                raise
            log.info("pull: %s; retrying", e)
            time.sleep(1.0)
    if not parts:
        return meta, np.zeros(0, dtype=SLOT128), {"records": 0, "duplicates": 0, "holes": []}
    allr = np.concatenate(parts)
    order = np.argsort(allr["seq"], kind="stable")
    allr = allr[order]
    keep = np.ones(len(allr), dtype=bool)
    keep[1:] = allr["seq"][1:] != allr["seq"][:-1]
    dups = int((~keep).sum())
    out = allr[keep]
    seqs = out["seq"].astype(np.int64)
    holes = []
    if len(seqs) > 1:
        step = np.nonzero(np.diff(seqs) != 1)[0]
        holes = [(int(seqs[i]) + 1, int(seqs[i + 1]) - 1) for i in step]
    return meta, out, {"records": len(out), "duplicates": dups, "holes": holes,
                       "first_seq": int(seqs[0]), "last_seq": int(seqs[-1])}


def pull(session: str, servers: list[str], out_path: str, stream: str = "LIVESTACK_RECORDS",
         prefix: str = "livestack.rec", timeout_s: float = 5.0, batch: int = 65536) -> dict:
    """Rebuild the session file's records at ``out_path`` from JetStream; returns the report."""
    from livestack.records.writer import RecordWriter

    meta, slots, report = fetch_records(servers, session, stream, prefix, timeout_s)
    if meta is None and not len(slots):
        raise LookupError(f"no records of session {session} in stream {stream} at {', '.join(servers)}")
    attrs = dict(meta or {"session": session})
    w = RecordWriter(out_path, attrs, {"quiet": True})
    try:
        for i in range(0, len(slots), batch):
            w.write(slots[i:i + batch])
            w.flush()
    finally:
        w.close(end={"end_reason": "pulled", "records_produced": report.get("last_seq", 0)})
    report["path"] = out_path
    return report


def _cmd_pull(args) -> int:
    servers = [s for a in args.servers for s in a.split(",") if s]
    try:
        report = pull(args.session, servers, args.out, args.stream, args.prefix, args.timeout)
    except (LookupError, OSError) as e:
        print(f"livestack records pull: {e}")
        return 1
    print(f"{report['records']:,} records of session {args.session} (seq {report.get('first_seq')}.."
          f"{report.get('last_seq')}) written to {report['path']}; duplicates dropped {report['duplicates']}, "
          f"holes {len(report['holes'])}" + (f": {report['holes'][:5]}" if report["holes"] else ""))
    return 0 if not report["holes"] else 1


def register_pull(rsub) -> None:
    """``livestack records pull SESSION --from nats://host:4222 --out FILE``."""
    p = rsub.add_parser("pull", help="rebuild a session's records from NATS JetStream (another host's writer)")
    p.add_argument("session", help="session id (the writer's, e.g. 12345-ab12cd)")
    p.add_argument("--from", dest="servers", action="append", required=True, metavar="URL",
                   help="nats://host:port (repeat or comma-separate for a cluster)")
    p.add_argument("--out", required=True, help="session file to write (.h5; must not exist)")
    p.add_argument("--stream", default="LIVESTACK_RECORDS")
    p.add_argument("--prefix", default="livestack.rec", help="subject prefix")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the server / next message")
    p.set_defaults(func=_cmd_pull)
