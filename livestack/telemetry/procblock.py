"""Per-process metrics blocks: each process (feed, venue, writer, control, supervisor) registers a
named shared-memory block of typed counters and gauges; the exporter reads every block of the
session and turns it into Prometheus families.

Why a second kind of block: the harness's telemetry block (``block.pyx``) has a fixed C layout the
harness writes from ``nogil`` code; the other processes are Python, have their own counters (and new
ones appear with every adapter), so their block is self-describing: a table of metric descriptors
(type, name, labels, help, scale) followed by an int64 value per metric.

Layout of ``/ls.<session>.m.<process>`` (little-endian)::

    0      u64 magic "LSPMET01"      8  u32 layout version   12 u32 capacity (descriptors)
    16     u32 n_metrics  (release: a descriptor is written before n_metrics covers it)
    24     i64 pid        32 i64 started_ns     40 i64 heartbeat_ns     48 u64 generation (starts)
    64     char process[64]          128 char labels[384] (constant labels of every metric)
    4096   descriptor[capacity]: u32 kind, u32 pad, f64 scale, char name[112], char labels[256],
                                 char help[128]           (512 bytes each)
    4096 + 512*capacity   i64 value[capacity]

Single writer, no locks: only the owning process writes (it holds the segment's producer role
lock, so a second writer fails loudly; a restarted process takes the role and the block over, and
its counters continue from the values already there). Values are aligned 8-byte stores, so a
reader sees each value whole; it reads ``n_metrics`` first and only the descriptors it covers,
which the writer completed before raising it. The supervisor's ``shm.remove_session`` removes the
blocks with the session's other segments.

Usage (any process)::

    blk = MetricsBlock.open(session, "feed", labels={"feed": "binance"})
    msgs = blk.counter("livestack_feed_messages_total", "messages received")
    msgs.inc()
    blk.gauge("livestack_writer_lag_seconds", "age of the oldest unpersisted record", scale=1e-9).set(ns)
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time

import numpy as np

from livestack.ipc import shm

log = logging.getLogger(__name__)

MAGIC = int.from_bytes(b"LSPMET01", "little")
LAYOUT_VERSION = 1
HEADER_SIZE = 4096
DEFAULT_CAPACITY = 512
COUNTER, GAUGE = 1, 2
KIND_NAMES = {COUNTER: "counter", GAUGE: "gauge"}
BLOCK_PREFIX = "m."

_HEADER = np.dtype([("magic", "<u8"), ("layout_version", "<u4"), ("capacity", "<u4"), ("n_metrics", "<u4"),
                    ("_pad", "<u4"), ("pid", "<i8"), ("started_ns", "<i8"), ("heartbeat_ns", "<i8"),
                    ("generation", "<u8"), ("process", "S64"), ("labels", "S384")])
_DESC = np.dtype([("kind", "<u4"), ("_pad", "<u4"), ("scale", "<f8"), ("name", "S112"), ("labels", "S256"),
                  ("help", "S128")])
assert _HEADER.itemsize <= HEADER_SIZE and _DESC.itemsize == 512

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class MetricsBlockError(Exception):
    """A bad metric name/label, a full block, or a segment that is not a metrics block."""


def segment_size(capacity: int) -> int:
    return HEADER_SIZE + capacity * (_DESC.itemsize + 8)


def block_name(session: str, process: str) -> str:
    """``/ls.<session>.m.<process>``."""
    return shm.segment_name(session, BLOCK_PREFIX + process)


def session_of(segment: str) -> str | None:
    """The session id in a segment name such as ``/ls.<session>.md.sim`` (None if it has none)."""
    m = re.match(r"^/?ls\.(\d+-[0-9a-z]+)\.", segment or "")
    return m.group(1) if m else None


def _escape(v) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_labels(labels: dict | None) -> str:
    """``{"a": "x", "b": 1}`` → ``a="x",b="1"`` (keys validated, values escaped, key order kept)."""
    out = []
    for k, v in (labels or {}).items():
        if not _LABEL_RE.match(k) or k.startswith("__"):
            raise MetricsBlockError(f"bad label name {k!r}")
        out.append(f'{k}="{_escape(v)}"')
    return ",".join(out)


def _encode(s: str, size: int, what: str) -> bytes:
    b = s.encode()
    if len(b) >= size:
        raise MetricsBlockError(f"{what} too long ({len(b)} bytes, at most {size - 1}): {s[:60]!r}")
    return b


class Metric:
    """One counter or gauge slot. ``inc``/``set`` are single aligned int64 stores (single writer)."""

    __slots__ = ("_v", "_i", "name", "kind", "scale")

    def __init__(self, values: np.ndarray, index: int, name: str, kind: int, scale: float):
        self._v, self._i, self.name, self.kind, self.scale = values, index, name, kind, scale

    def inc(self, n: int = 1) -> None:
        self._v[self._i] += n

    def set(self, v) -> None:
        """Set the raw (unscaled) value; a counter must only go up (a mirror of a process-local count)."""
        self._v[self._i] = int(v)

    @property
    def value(self) -> int:
        return int(self._v[self._i])


class MetricsBlock:
    """The writer side: create (or take over after a restart) the block of one process."""

    def __init__(self, seg: shm.Segment, name: str):
        self._seg = seg
        self.name = name
        mm = seg.mm
        self._hdr = np.frombuffer(mm, dtype=_HEADER, count=1)
        cap = int(self._hdr["capacity"][0])
        self.capacity = cap
        self._desc = np.frombuffer(mm, dtype=_DESC, count=cap, offset=HEADER_SIZE)
        self._values = np.frombuffer(mm, dtype="<i8", count=cap, offset=HEADER_SIZE + cap * _DESC.itemsize)
        self._index: dict[tuple[str, str], int] = {}
        n = int(self._hdr["n_metrics"][0])
        for i in range(n):
            d = self._desc[i]
            self._index[(d["name"].decode(), d["labels"].decode())] = i

    @classmethod
    def open(cls, session: str, process: str, labels: dict | None = None,
             capacity: int = DEFAULT_CAPACITY) -> "MetricsBlock":
        """Create ``/ls.<session>.m.<process>``, or take it over when a previous instance of the
        process left it (a restart: registered metrics keep their slots and values)."""
        name = block_name(session, process)
        const = format_labels(labels)
        try:
            seg = shm.Segment.create(name, segment_size(capacity))
            hdr = np.frombuffer(seg.mm, dtype=_HEADER, count=1)
            hdr["capacity"] = capacity
            hdr["layout_version"] = LAYOUT_VERSION
            hdr["process"] = _encode(process, 64, "process name")
            hdr["labels"] = _encode(const, 384, "block labels")
            hdr["started_ns"] = time.time_ns()
            hdr["magic"] = MAGIC  # last: readers treat the block as absent until it is set
        except FileExistsError:
            seg = shm.Segment.attach(name, 5.0, _initialised)
            check(seg, name)
        if not seg.take_role(0):
            seg.close()
            raise MetricsBlockError(f"metrics block {name}: another live process writes it")
        self = cls(seg, name)
        h = self._hdr
        h["pid"] = os.getpid()
        h["generation"] += 1
        h["heartbeat_ns"] = time.time_ns()
        if h["labels"][0].decode() != const:
            h["labels"] = _encode(const, 384, "block labels")
        return self

    def _register(self, kind: int, name: str, help: str, labels: dict | None, scale: float) -> Metric:
        if not _NAME_RE.match(name):
            raise MetricsBlockError(f"bad metric name {name!r}")
        if kind == COUNTER and not name.endswith("_total"):
            raise MetricsBlockError(f"counter {name!r} must end in _total (Prometheus convention)")
        lab = format_labels(labels)
        key = (name, lab)
        i = self._index.get(key)
        if i is not None:
            if int(self._desc["kind"][i]) != kind:
                raise MetricsBlockError(f"{name}{{{lab}}} already registered as {KIND_NAMES[int(self._desc['kind'][i])]}")
            return Metric(self._values, i, name, kind, scale)
        n = int(self._hdr["n_metrics"][0])
        if n >= self.capacity:
            raise MetricsBlockError(f"metrics block {self.name} is full ({self.capacity} metrics)")
        d = self._desc[n:n + 1]
        d["kind"] = kind
        d["scale"] = scale
        d["name"] = _encode(name, 112, "metric name")
        d["labels"] = _encode(lab, 256, "metric labels")
        d["help"] = help.encode()[:127]
        self._values[n] = 0
        self._hdr["n_metrics"] = n + 1  # publish after the descriptor (x86-64 keeps store order)
        self._index[key] = n
        return Metric(self._values, n, name, kind, scale)

    def counter(self, name: str, help: str, labels: dict | None = None, scale: float = 1.0) -> Metric:
        """A monotonically increasing count; ``name`` ends in ``_total``."""
        return self._register(COUNTER, name, help, labels, scale)

    def gauge(self, name: str, help: str, labels: dict | None = None, scale: float = 1.0) -> Metric:
        """A value that goes up and down; exported as ``raw value × scale`` (e.g. ns stored, 1e-9)."""
        return self._register(GAUGE, name, help, labels, scale)

    def heartbeat(self) -> None:
        self._hdr["heartbeat_ns"] = time.time_ns()

    def close(self) -> None:
        if self._seg is not None:
            del self._hdr, self._desc, self._values
            self._seg.close()
            self._seg = None


def _initialised(mm) -> bool:
    return len(mm) >= HEADER_SIZE and int(np.frombuffer(mm, dtype="<u8", count=1)[0]) == MAGIC


def check(seg: shm.Segment, name: str) -> None:
    h = np.frombuffer(seg.mm, dtype=_HEADER, count=1)
    if int(h["magic"][0]) != MAGIC or int(h["layout_version"][0]) != LAYOUT_VERSION:
        seg.close()
        raise MetricsBlockError(f"{name}: not a metrics block of layout {LAYOUT_VERSION}")
    if len(seg.mm) < segment_size(int(h["capacity"][0])):
        seg.close()
        raise MetricsBlockError(f"{name}: segment smaller than its capacity says")


def session_blocks(session: str) -> list[str]:
    """Segment names of every metrics block of ``session`` now (sorted)."""
    prefix = f"{shm.PREFIX}{session}.{BLOCK_PREFIX}"
    try:
        names = os.listdir(shm.SHM_DIR)
    except OSError:
        return []
    return sorted("/" + n for n in names if n.startswith(prefix))


def read(name: str) -> dict:
    """One consistent-enough read of a block: ``{process, pid, labels, heartbeat_ns, generation,
    metrics: [(kind, name, labels, help, value)]}`` where value is already scaled.

    Raises SegmentMissing / MetricsBlockError when the block is gone or not one."""
    seg = shm.Segment.attach(name, 0.0, _initialised)
    try:
        check(seg, name)
        mm = seg.mm
        h = np.frombuffer(mm, dtype=_HEADER, count=1)[0].copy()
        cap = int(h["capacity"])
        n = min(int(h["n_metrics"]), cap)
        desc = np.frombuffer(mm, dtype=_DESC, count=n, offset=HEADER_SIZE).copy()
        vals = np.frombuffer(mm, dtype="<i8", count=n, offset=HEADER_SIZE + cap * _DESC.itemsize).copy()
    finally:
        seg.close()
    metrics = []
    for d, v in zip(desc, vals.tolist()):
        scale = float(d["scale"])
        metrics.append((int(d["kind"]), d["name"].decode(), d["labels"].decode(), d["help"].decode(errors="replace"),
                        v * scale if scale != 1.0 else v))
    return {"process": h["process"].decode(), "pid": int(h["pid"]), "labels": h["labels"].decode(),
            "heartbeat_ns": int(h["heartbeat_ns"]), "generation": int(h["generation"]), "metrics": metrics}


class Mirror:
    """A daemon thread that copies a process's own counters (Python dicts/objects it already keeps
    on its hot path) into its metrics block every ``interval_s`` -- and once more at :meth:`stop`.

    ``update(block)`` is the process's function that reads its counters and ``set``s metrics; it
    runs in this thread only, so the block keeps a single writer. Reading ints another thread
    increments is safe under the GIL (a value is at worst one interval old).
    """

    def __init__(self, block: MetricsBlock, update, interval_s: float = 0.5):
        self.block, self.update, self.interval = block, update, interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"livestack-metrics-{block.name}", daemon=True)
        self._thread.start()

    def _once(self) -> None:
        with self._lock:
            if self.block._seg is None:
                return
            try:
                self.update(self.block)
                self.block.heartbeat()
            except Exception:  # noqa: BLE001 - metrics must never take the process down
                log.exception("metrics mirror of %s failed", self.block.name)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._once()

    def stop(self, close: bool = True) -> None:
        self._stop.set()
        self._thread.join(5)
        self._once()
        if close:
            with self._lock:
                self.block.close()


def start_mirror(session_or_segment: str, process: str, update, labels: dict | None = None,
                 interval_s: float = 0.5) -> Mirror | None:
    """Open the block of ``process`` in the session (given as an id or any of its segment names)
    and start mirroring; None (logged) when there is no session or the block cannot be opened, so a
    process runs on without metrics rather than failing."""
    session = session_of(session_or_segment) or session_or_segment
    if not session or not re.match(r"^\d+-[0-9a-z]+$", session):
        return None
    try:
        blk = MetricsBlock.open(session, process, labels)
    except Exception as e:  # noqa: BLE001
        log.warning("no metrics block for %s: %s", process, e)
        return None
    return Mirror(blk, update, interval_s)
