"""The Execution Record Writer: the records ring → one HDF5 file per session.

::

    harness ──records ring (128-byte slots, seq 1,2,3… over every kind)──▶ writer process
                                                                             │ view(n): zero copy
                                                                             ▼
             route by header kind → /md_level /exec /control_cmd /timer … (consumed inputs, flag JOURNAL)
                                    /order_state /fill /order_cmd /position /denial … (core outputs)
                                    (the schema dtype of the kind; 64-byte kinds as 64: stored once)
             and for each input (flag JOURNAL) → /journal: (seq, row, kind), the ordered index of
                                    the consumed inputs (spec.JOURNAL_INDEX, 18 bytes an input)
                                                                             │ H5Dset_extent + H5Dwrite
                                                                             ▼ of a hyperslab per dataset
                             every flush_interval_ms (and at a wrap / high water): H5Fflush,
                             THEN ring.release(everything flushed)

Loss rules (why the code is shaped like this):

* **Released only after flushed.** The ring's consumer position lives in shared memory. The writer
  views records without releasing them, writes them, flushes the file, and only then releases.
  A writer killed at any point leaves every unflushed record in the ring.
* **Restart: no gap, no duplicate.** On start the writer reopens the file for append and reads the
  last header ``seq`` of every dataset. Each dataset receives its records in seq order, so a
  record of seq ``s`` for dataset ``D`` is already in the file iff ``s <= last_seq[D]``; those are
  skipped (counted), the rest appended. This holds even if a crash landed between two datasets'
  metadata flushes.
* **Holes are loud.** The record stream's seq is contiguous from 1. A hole (or a step back outside
  the restart catch-up) increments a counter and is printed to stderr; the records around it are
  still written, never dropped.
* **Durable on disk within a second.** A flush (``H5Fflush``) hands the data to the OS, which is
  all a crash of the writer process needs. Against a crash of the machine (which takes the shm
  rings with it too) the file is also ``fsync``-ed after a flush at most every
  ``fsync_interval_ms`` (default 1000) and at close: a host crash loses about that much plus one
  fsync's duration. The periodic fsync runs in a background thread (``os.fsync`` releases the
  GIL), so a slow disk never stops the writer draining the ring.
* **A full disk is a defined state** (``diskspace.py``): free space is checked before every
  batch; the writer tells the harness (telemetry ``writer_disk_state``: low → REDUCING, halt →
  cancel all + HALTED) and, before HDF5 could meet ENOSPC, flushes and closes the file cleanly
  (``end_reason = "disk_full"``; the room that flush and close write into is held past the file's
  end before every batch, so a disk filled by someone else cannot make them fail), then consumes and counts what the harness still records
  (``records_lost_disk_full``) so the harness never blocks; it exits ``EXIT_DISK_FULL`` at stop
  and is not restarted.
* **The file says where the harness ended.** At close the writer stamps the harness's last record
  seq (``harness_last_seq``, from the telemetry block once the harness is done, else the records
  ring's producer position); ``records summary`` reports a missing tail when the file ends short.
* **Readable after any crash.** The file is written in SWMR mode (``libver='latest'``), whose
  ordered metadata flushes keep the file consistent for readers at every instant. A killed SWMR
  writer leaves the superblock's "open for write" flags set; the restarted writer clears them
  (``h5util.clear_status_flags``, the ``h5clear -s`` of the HDF5 tools) after taking the
  ``<file>.lock`` flock that proves no other writer has the file. That flock is the writer's
  only lock: HDF5's own file lock is off in the writer, so a reader holding the file open (SWMR)
  can never refuse a restarted writer. A new file is created as ``<file>.tmp`` and renamed into
  place only once it is open in SWMR-write mode, so no reader ever opens a non-SWMR session file.

**Routing in one pass.** A batch in the common case (seq contiguous from the next expected, every
kind known, nothing already in the file) is routed by ``_route.route`` (Cython): each slot is read
once, its seq checked, the bytes its dataset stores copied to that kind's buffer and, for an
input, its journal entry written. Anything else (a hole, a step back, an unknown kind, a restart
catch-up) takes the numpy path, which reports it; both write the same rows in the same order. The
per-kind buffers are made when a kind first appears and grow to the largest batch of that kind
(at most ``batch`` rows), so the writer's memory stays bounded.

The harness is never slowed by the writer: the writer only ever releases ring slots. The writer
never busy-spins (``Backoff("backoff")``): it shares a core with everything but the harness.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import logging
import os
import socket
import threading
import time

import h5py
import numpy as np

import livestack
from livestack.records import diskspace, h5util
from livestack.schema import DTYPES, SLOT128, RecordFlag, spec
from livestack.schema import JOURNAL as JOURNAL_DTYPE

log = logging.getLogger(__name__)

#: dataset name → (record kind or 0, numpy dtype). Kind 0 marks the journal (the index of the
#: consumed inputs, JOURNAL_DTYPE); -1 unknown kinds.
JOURNAL = "journal"
UNKNOWN = "unknown"
DATASETS: dict[str, tuple[int, np.dtype]] = {JOURNAL: (0, JOURNAL_DTYPE)}
DATASETS.update({r.name.lower(): (r.kind, DTYPES[r.name]) for r in spec.RECORDS})
DATASETS[UNKNOWN] = (-1, SLOT128)
#: routing key → dataset name; key 0 is the journal, 1..255 the record kinds, 256 anything unknown
_KEY_UNKNOWN = 256
_KEY_TO_NAME = {0: JOURNAL, _KEY_UNKNOWN: UNKNOWN}
_KEY_TO_NAME.update({r.kind: r.name.lower() for r in spec.RECORDS})
_KNOWN = np.zeros(_KEY_UNKNOWN + 1, dtype=bool)
for _r in spec.RECORDS:
    _KNOWN[_r.kind] = True

_JOURNAL_BIT = int(RecordFlag.JOURNAL)
#: bytes each routing key's dataset stores (0: not a record kind; the journal and unknown kinds
#: never take the one-pass route)
_SIZE_OF = np.zeros(_KEY_UNKNOWN + 1, dtype=np.int64)
for _r in spec.RECORDS:
    _SIZE_OF[_r.kind] = DTYPES[_r.name].itemsize
_ROUTED_KEYS = [r.kind for r in spec.RECORDS]

try:  # the one-pass router (Cython); without the built extension every batch takes the numpy path
    from livestack.records import _route
except ImportError:  # pragma: no cover - a source tree that was not built
    _route = None

DEFAULT_OPTIONS = {
    "flush_interval_ms": 100.0,   # flush + release at least this often while records arrive
    "fsync_interval_ms": 1000.0,  # fsync the file at a flush at most this often (0 = never)
    "batch": 65536,               # most records taken from the ring in one pass
    "min_write": 4096,            # fewer new records than this wait in the ring until a flush is due
    "chunk_records": 4096,        # HDF5 chunk length (rows) of the per-kind datasets
    "journal_chunk_records": 8192,  # HDF5 chunk length of /journal
    "journal_gzip": 1,            # deflate level of /journal (+ byte shuffle): its seq/row columns climb by ~1,
                                  # ~18 bytes an input become ~1 (0 = uncompressed); standard HDF5 filters only
    "high_water": 0.25,           # flush early when this fraction of the ring is written-unreleased
    "attach_timeout_s": 10.0,     # wait this long for the records ring to appear
    "status_interval_s": 0.0,     # > 0: print the counters to stderr this often
    "quiet": False,               # no stderr lines except holes and errors
    "min_free_mb": 0.0,           # free space needed on the records filesystem (0 = no guard; diskspace.py)
    "disk_check_interval_ms": 1000.0,  # re-check free space at least this often while idle
    "final_drain_timeout_s": 10.0,  # at stop: keep draining until the harness is done, at most this long
    "telemetry": None,            # telemetry segment: disk state for the harness, harness's last seq
    "harness_pid": 0,             # the harness (stop: drain until it is gone or done)
}
#: attributes the writer overwrites at close (created with the file: SWMR cannot add attributes)
_END_ATTRS = {"end_reason": "", "harness_last_seq": np.int64(0), "records_produced": np.int64(0),
              "records_lost_disk_full": np.int64(0)}


def default_path(session: str, records_dir: str = "records", date: _dt.date | None = None) -> str:
    """``<records_dir>/<YYYY-MM-DD>/<session>.h5`` (local date, as the supervisor uses)."""
    day = (date or _dt.date.today()).isoformat()
    return os.path.join(records_dir, day, f"{session}.h5")


def session_identity(cfg: dict, mode: str, instruments=None) -> dict:
    """Attributes every session file carries about what ran, live or backtest alike: ``mode``
    ("live" | "backtest"), ``strategy`` (the Strategy SDK's identity: ref, module, path, sha256 of
    the source, params, flavour; a list for ``[[strategies]]``; ``replay`` compares it) and
    ``strategy_params`` (JSON), so a live run (the supervisor) and a backtest
    (``livestack.backtest.session``) stamp the same."""
    from livestack.node.config import instruments as config_instruments
    from livestack.strategies import config as strategy_config

    st = (cfg or {}).get("strategy") or {}
    insts = instruments if instruments is not None else config_instruments(cfg)
    return {"mode": mode, "strategy": strategy_config.session_identity(cfg, insts),
            "strategy_params": json.dumps(st.get("params") or {}, sort_keys=True, default=str)}


class WriterLocked(RuntimeError):
    """Another live writer holds the file's lock."""


def _jsonable(v):
    if hasattr(v, "__dataclass_fields__"):
        return {k: getattr(v, k) for k in v.__dataclass_fields__}
    if isinstance(v, (set, tuple)):
        return list(v)
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def _dumps(v) -> str:
    return json.dumps(v, default=_jsonable, sort_keys=True)


def _secrets():
    from livestack import secrets

    return secrets


def _now_iso(ns: int) -> str:
    return _dt.datetime.fromtimestamp(ns / 1e9, _dt.timezone.utc).isoformat(timespec="microseconds")


class RecordWriter:
    """Appends record slots to a session file; usable in-process (tests, replay, benchmarks).

    Parameters
    ----------
    path : str
        The session file. Created (with its directory) when missing, else opened for append.
    attrs : dict, optional
        Session attributes: ``session``, ``config`` (dict), ``cpu``, ``instruments`` (list of
        ``Instrument`` or dicts with id, symbol, price_decimals, qty_decimals), anything else
        (stored as JSON when not a plain str/int/float). Only applied when the file is created.
    options : dict, optional
        See ``DEFAULT_OPTIONS``.

    Use :meth:`write` for arrays of 128-byte slots (SLOT128), :meth:`flush` to make them durable
    and visible to SWMR readers, :meth:`close` at the end (stamps the stop time).
    """

    def __init__(self, path: str, attrs: dict | None = None, options: dict | None = None):
        self.options = dict(DEFAULT_OPTIONS, **(options or {}))
        self.path = os.path.abspath(path)
        self.counters = {
            "records_in": 0,          # slots handed to write()
            "records_written": 0,     # rows appended to datasets (journal + kinds)
            "duplicates_skipped": 0,  # already in the file (restart catch-up)
            "holes": 0,               # seq holes seen
            "missing_records": 0,     # seqs missing across those holes
            "seq_regressions": 0,     # seq stepped back outside the restart catch-up
            "unknown_kind": 0,        # slots of a kind the schema does not know (kept in /unknown)
            "flushes": 0,
            "fsyncs": 0,
            "writer_starts": 0,
            "records_lost_disk_full": 0,  # taken from the ring after the disk filled, not written
        }
        self._fsync_thread = None
        self.fsync_stats = None  # set by run_process: fsync latency for /metrics
        # the one-pass route's buffers (write): one per kind, made when the kind first appears
        self._bufs: list = [None] * (_KEY_UNKNOWN + 1)
        self._count = np.zeros(_KEY_UNKNOWN + 1, dtype=np.int64)
        self._base_row = np.zeros(_KEY_UNKNOWN + 1, dtype=np.int64)
        self._need = np.zeros(1, dtype=np.int64)
        self._jbuf = np.empty(0, dtype=np.uint8)
        self.file = None
        d = os.path.dirname(self.path)
        if d:
            os.makedirs(d, exist_ok=True)
        self.disk = diskspace.DiskGuard(d or ".", self.options["min_free_mb"])
        if not self.disk.preflight():
            raise diskspace.DiskFull(f"{d}: {self.disk.free / 2**20:.1f} MiB free, the writer needs "
                                     f"min_free_mb = {self.options['min_free_mb']:g}")
        self._lock_fd = self._lock()
        try:
            self._open(attrs or {})
        except BaseException:
            self._unlock(remove=False)
            raise
        self.disk.take_reserve(self.path + ".reserve")
        try:
            self.disk.hold_tail(self.file.id.get_vfd_handle())  # room for the close from the start
        except diskspace.DiskFull:
            pass  # the first batch's hold stops the writer before anything is written

    # ------------------------------------------------------------------------------------------
    def _lock(self) -> int:
        private = _secrets()
        private.private_dir(os.path.dirname(self.path))  # session files carry the config: owner-only dir (0700)
        if os.path.exists(self.path):
            private.make_private(self.path)  # a file from an older version was 0644
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WriterLocked(f"{self.path}: another writer holds {self.path}.lock") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def _unlock(self, remove: bool) -> None:
        if self._lock_fd is None:
            return
        if remove:
            try:
                os.unlink(self.path + ".lock")
            except FileNotFoundError:
                pass
        os.close(self._lock_fd)
        self._lock_fd = None

    def _open(self, attrs: dict) -> None:
        """Create (atomically) or reopen the file, and hold it open in SWMR-write mode.

        Creation happens in ``<file>.tmp`` that is renamed into place once complete and open in
        SWMR-write mode, so a writer killed while creating leaves no half-made session file and a
        reader never finds one that is not in SWMR mode. An existing file is opened
        straight in SWMR-write mode (never in plain write mode, whose metadata writes are not
        crash-ordered) after its stale status flags, if any, are cleared.
        """
        o = self.options
        now = time.time_ns()
        self.created = not os.path.exists(self.path)
        # HDF5's own file lock is off for the writer: the <file>.lock flock (taken before this)
        # already proves it is the only writer, and HDF5's lock lets any reader that holds the file
        # open in SWMR mode (`records summary`, a dashboard, a test following the journal) refuse a
        # restarted writer ("unable to lock file, errno 11") until the reader closes it: the
        # session went on trading with no records written (seen in CI)
        tmp = self.path + ".tmp"
        if self.created:
            _secrets().create_private_file(tmp)  # 0600 before a byte is written (h5py "w" keeps the mode)
            with h5py.File(tmp, "w", libver="latest", locking=False) as f:
                self._stamp_new(f, attrs, now)
                self._create_datasets(f)
        else:
            old = h5util.status_flags(self.path)
            if old:
                h5util.clear_status_flags(self.path)
                self._say(f"{self.path}: previous writer did not close the file (flags {old:#x}); "
                          "cleared them and resuming")
            with h5py.File(self.path, "r", libver="latest", locking=False) as f:
                missing = [n for n in DATASETS if n not in f]
                missing_attrs = [k for k in _END_ATTRS if k not in f.attrs]
            if missing or missing_attrs:  # kinds/attributes added since the file was made (additive)
                with h5py.File(self.path, "r+", libver="latest", locking=False) as f:
                    self._create_datasets(f)
                    for k in missing_attrs:
                        f.attrs[k] = _END_ATTRS[k]
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
        fapl.set_file_locking(False, True)
        fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
        # Bounded caches so the writer's memory is flat over a long session. The chunk cache is
        # set per dataset below to exactly one chunk: appends write whole batches through
        # hyperslabs, so only the tail chunk is ever revisited. (A shared size per dataset filled
        # up at each dataset's own rate: a kind written 300 times a second took minutes to fill
        # 2 MiB, which a soak read as steady growth.) The metadata cache (chunk index, object
        # headers) is capped at 4 MiB.
        fapl.set_cache(0, 521, 0, 1.0)
        mdc = fapl.get_mdc_config()
        mdc.set_initial_size = True
        mdc.initial_size = 2 << 20
        mdc.max_size = 4 << 20
        mdc.min_size = 1 << 20
        fapl.set_mdc_config(mdc)
        # a new file is put in place only once it is open in SWMR-write mode: a reader that found
        # it between the rename and that open saw a closed, non-SWMR file (stale view, and a lock)
        where = tmp if self.created else self.path
        fid = h5py.h5f.open(where.encode(), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE, fapl=fapl)
        if self.created:
            os.replace(tmp, self.path)
        f = self.file = h5py.File(fid)
        if not self.created:
            f.attrs["stop_time_ns"] = np.int64(0)
            f.attrs["stop_time"] = ""
            for k, v in _END_ATTRS.items():  # open again: where it ends is not known yet
                f.attrs[k] = v
        f.attrs["writer_starts"] = np.int64(int(f.attrs.get("writer_starts", 0)) + 1)
        f.attrs["writer_pid"] = np.int64(os.getpid())
        f.attrs["writer_last_start_ns"] = np.int64(now)
        self.counters["writer_starts"] = int(f.attrs["writer_starts"])
        for name, (_, dt) in DATASETS.items():
            if f[name].dtype != dt:
                raise ValueError(f"{self.path}: dataset /{name} has dtype {f[name].dtype}, this build writes {dt}")
        self._ds = {name: self._open_dataset(name) for name in DATASETS}
        self._dsid = {name: ds.id for name, ds in self._ds.items()}
        self._mtype = {name: ds.id.get_type() for name, ds in self._ds.items()}
        self.size = {name: int(ds.shape[0]) for name, ds in self._ds.items()}
        self._flushed_size = dict(self.size)
        self.last_seq = {name: (int(ds[-1]["seq"]) if self.size[name] else 0) for name, ds in self._ds.items()}
        #: highest seq in the file when this writer started: records at or below it are catch-up
        self.resume_seq = max(self.last_seq.values())
        self.next_seq = self.resume_seq + 1
        f.flush()
        if not self.created and self.resume_seq:
            self._say(f"{self.path}: resuming after seq {self.resume_seq:,} "
                      f"({sum(self.size.values()):,} rows in the file)")

    def _open_dataset(self, name: str) -> h5py.Dataset:
        """Open ``/name`` with a chunk cache of exactly one chunk, evicting written chunks first."""
        ds = self.file[name]
        chunk_bytes = int(ds.chunks[0]) * ds.dtype.itemsize
        del ds  # (HDF5 hands a second open of an open dataset the first one's cache: close it)
        dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
        dapl.set_chunk_cache(101, chunk_bytes, 1.0)
        return h5py.Dataset(h5py.h5d.open(self.file.id, name.encode(), dapl=dapl))

    def _create_datasets(self, f: h5py.File) -> None:
        """One chunked, extendable dataset per record kind (+ journal, unknown), schema dtypes."""
        o = self.options
        for name, (kind, dt) in DATASETS.items():
            if name in f:
                continue
            chunk = o["journal_chunk_records"] if kind <= 0 else o["chunk_records"]
            filters = {}
            if name == JOURNAL and int(o["journal_gzip"]) > 0:
                filters = {"compression": "gzip", "compression_opts": int(o["journal_gzip"]), "shuffle": True}
            ds = f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(int(chunk),), **filters)
            ds.attrs["kind"] = np.int64(kind)
            ds.attrs["record"] = spec.RECORDS_BY_KIND[kind].name if kind > 0 else name.upper()
            ds.attrs["layout_version"] = np.int64(spec.RECORDS_BY_KIND[kind].version if kind > 0 else 0)

    def _stamp_new(self, f: h5py.File, attrs: dict, now: int) -> None:
        attrs = _secrets().redact_config(attrs)  # FIX passwords, API keys, CURVE secrets never reach the file
        a = f.attrs
        a["livestack_version"] = livestack.__version__
        a["schema_version"] = np.int64(spec.SCHEMA_VERSION)
        a["h5py_version"] = h5py.version.version
        a["hdf5_version"] = h5py.version.hdf5_version
        a["host"] = socket.gethostname()
        a["session"] = str(attrs.get("session", os.path.splitext(os.path.basename(self.path))[0]))
        a["config"] = _dumps(attrs.get("config", {}))
        a["cpu"] = _dumps(attrs.get("cpu", {}))
        a["instruments"] = _dumps(attrs.get("instruments", []))
        a["start_time_ns"] = np.int64(attrs.get("start_time_ns", now))
        a["start_time"] = _now_iso(int(a["start_time_ns"]))
        a["stop_time_ns"] = np.int64(0)
        a["stop_time"] = ""
        a["writer_starts"] = np.int64(0)
        a["writer_counters"] = ""  # (every attribute exists before SWMR mode: later writes only overwrite)
        a["writer_pid"] = np.int64(0)
        a["writer_last_start_ns"] = np.int64(0)
        for k, v in _END_ATTRS.items():
            a[k] = v
        for k, v in attrs.items():
            if k in ("session", "config", "cpu", "instruments", "start_time_ns"):
                continue
            if isinstance(v, (str, bool, int, float, np.integer, np.floating)):
                a[k] = v
            else:
                a[k] = _dumps(v)

    def _say(self, msg: str, loud: bool = False) -> None:
        if loud:
            log.warning(msg)
        elif not self.options["quiet"]:
            log.info(msg)

    # ------------------------------------------------------------------------------------------
    def write(self, slots: np.ndarray) -> int:
        """Route and append ``slots`` (SLOT128 array or (n, 128) uint8) in ring order.

        Returns the number of rows appended (slots minus duplicates skipped). Not durable until
        :meth:`flush`.
        """
        n = len(slots)
        if n == 0:
            return 0
        if slots.dtype == np.uint8:
            raw = slots.reshape(n, 128)
            rec = raw.view(SLOT128).reshape(n)
        else:
            if slots.dtype.itemsize != 128:
                raise ValueError(f"writer: slots of {slots.dtype.itemsize} bytes, expected 128")
            rec = slots
            raw = slots.view(np.uint8).reshape(n, 128)
        self.counters["records_in"] += n
        if _route is not None:
            written = self._write_routed(raw, n)
            if written is not None:
                return written
        self._check_seq(rec["seq"])
        kinds = rec["kind"]
        key = kinds.astype(np.uint16)  # 16-bit keys: numpy's stable argsort is a radix sort
        known = _KNOWN[np.minimum(key, _KEY_UNKNOWN)]
        if not known.all():
            unknown = ~known
            self.counters["unknown_kind"] += int(unknown.sum())
            self._say(f"{int(unknown.sum())} records of unknown kind {sorted(set(kinds[unknown].tolist()))} "
                      "kept in /unknown", loud=True)
            key[unknown] = _KEY_UNKNOWN
        journaled = (rec["flags"] & _JOURNAL_BIT) != 0
        jcount = int(np.count_nonzero(journaled))
        rows = np.full(n, -1, dtype=np.int64) if jcount else None  # row each slot got in its dataset
        first = int(key[0])
        if (key == first).all():  # one destination: no gather needed
            if self.disk.enabled:
                self._room({first: n, 0: jcount} if jcount else {first: n})
            written = self._append(first, raw, rec, rows, None)
        else:
            order = np.argsort(key, kind="stable")
            counts = np.bincount(key, minlength=_KEY_UNKNOWN + 1)
            if self.disk.enabled:
                need = {int(k): int(counts[k]) for k in np.flatnonzero(counts)}
                if jcount:
                    need[0] = jcount
                self._room(need)
            # each destination gathers only its own rows, and only the bytes its dtype stores (64 of
            # the 128 for the 64-byte kinds): one copy per record, not a whole-slot regroup first
            written = 0
            start = 0
            for k in np.flatnonzero(counts):
                c = int(counts[k])
                written += self._append(int(k), raw, rec, rows, order[start:start + c])
                start += c
        if jcount:
            written += self._append_journal(rec, journaled, rows, key)
        return written

    def _write_routed(self, raw: np.ndarray, n: int) -> int | None:
        """The common case in one pass over the slots (``_route``): seq contiguous from the next
        expected, every kind known, nothing already in the file. None when the batch is not that
        case (nothing was written): the general path below handles and reports it. Same rows, same
        order, same journal as the general path."""
        expect = self.next_seq
        if expect <= max(self.last_seq.values()):
            return None  # restart catch-up: duplicates to skip
        if len(self._jbuf) < n * JOURNAL_DTYPE.itemsize:
            self._jbuf = np.empty(max(n, 4096) * JOURNAL_DTYPE.itemsize, dtype=np.uint8)
        base = self._base_row
        for k in _ROUTED_KEYS:
            base[k] = self.size[_KEY_TO_NAME[k]]
        while True:
            j = _route.route(raw, expect, _JOURNAL_BIT, _SIZE_OF, self._bufs, self._count, base, self._jbuf,
                             self._need)
            if j != _route.NEED_BUFFER:
                break
            k = int(self._need[0])  # a kind's first batch, or a batch larger than its buffer
            self._bufs[k] = np.empty(max(n, 4096) * int(_SIZE_OF[k]), dtype=np.uint8)
        if j < 0:
            return None
        self.next_seq = expect + n
        counts = self._count
        present = np.flatnonzero(counts).tolist()
        if self.disk.enabled:
            need = {k: int(counts[k]) for k in present}
            if j:
                need[0] = j
            self._room(need)
        written = 0
        for k in present:
            name = _KEY_TO_NAME[k]
            written += self._append_rows(name, self._bufs[k][:int(counts[k]) * int(_SIZE_OF[k])].view(DATASETS[name][1]))
        if j:
            written += self._append_rows(JOURNAL, self._jbuf[:j * JOURNAL_DTYPE.itemsize].view(JOURNAL_DTYPE))
        return written

    def _append_journal(self, rec: np.ndarray, journaled: np.ndarray, rows: np.ndarray, key: np.ndarray) -> int:
        """Index the consumed inputs of this batch in /journal, in ring (= hseq) order."""
        idx = np.flatnonzero(journaled)
        entries = np.empty(len(idx), dtype=JOURNAL_DTYPE)
        entries["seq"] = rec["seq"][idx]
        entries["kind"] = rec["kind"][idx]
        r = rows[idx]
        last = self.last_seq[JOURNAL]
        keep = entries["seq"] > last  # restart catch-up: entries already indexed are skipped
        if not keep.all():
            self.counters["duplicates_skipped"] += int(len(keep) - keep.sum())
            entries, r, idx = entries[keep], r[keep], idx[keep]
        missing = np.flatnonzero(r < 0)
        for i in missing.tolist():  # in the file already (restart catch-up), its index entry not: look it up
            r[i] = self._row_of(_KEY_TO_NAME[int(key[idx[i]])], int(entries["seq"][i]))
        entries["row"] = r.astype(np.uint64)
        if len(entries) == 0:
            return 0
        return self._append_rows(JOURNAL, entries)

    def _row_of(self, name: str, seq: int) -> int:
        """Row of the record ``seq`` in dataset ``name`` (rows are in seq order): a binary search."""
        ds = self._ds[name]
        lo, hi = 0, self.size[name]
        while lo < hi:
            mid = (lo + hi) // 2
            if int(ds[mid]["seq"]) < seq:
                lo = mid + 1
            else:
                hi = mid
        if lo >= self.size[name] or int(ds[lo]["seq"]) != seq:
            raise ValueError(f"{self.path}: journaled seq {seq} is in neither the batch nor /{name}")
        return lo

    def rollback(self) -> None:
        """Undo every append since the last successful :meth:`flush` (after ENOSPC: HDF5 may have
        dropped chunk data that failed to reach the disk, and rows it added would be flushed as
        zeros). The file then ends where the last flush left it: a contiguous prefix."""
        for name, n in self._flushed_size.items():
            dsid = self._dsid[name]
            if dsid.get_space().shape[0] != n:
                dsid.set_extent((n,))
            self.size[name] = n

    def _room(self, rows: dict[int, int]) -> None:
        """Raise DiskFull, writing nothing, when this batch would leave less than the stop floor
        (the batch's new chunks plus metadata slack): the file stays a contiguous prefix."""
        need = diskspace.METADATA_SLACK
        for key, k in rows.items():
            ds = self._ds[_KEY_TO_NAME[key]]
            need += diskspace.batch_bytes(self.size[_KEY_TO_NAME[key]], k, int(ds.chunks[0]), ds.dtype.itemsize)
        if self.disk.check(need) == diskspace.STOPPED:
            raise diskspace.DiskFull(f"{self.path}: {self.disk.free / 2**20:.1f} MiB free, a batch needs "
                                     f"{need / 2**20:.1f} MiB and the floor is {self.disk.min_free / 4 / 2**20:.1f} MiB")
        self.disk.hold_tail(self.file.id.get_vfd_handle(), need)  # DiskFull: nothing written

    def _append(self, key: int, raw: np.ndarray, rec: np.ndarray, rows_out: np.ndarray | None,
                where: np.ndarray | None) -> int:
        """Append the slots ``where`` (indices into ``raw``/``rec``, in seq order; None: all of them)
        of one destination; ``rows_out[where[i]]`` gets the row slot ``where[i]`` landed in (left -1
        when it was already in the file)."""
        name = _KEY_TO_NAME[key]
        last = self.last_seq[name]
        if where is None:
            where = np.arange(len(rec))
            whole = True
        else:
            whole = False
        seqs = rec["seq"] if whole else rec["seq"][where]
        if int(seqs[0]) <= last:  # restart catch-up: some of these are already in the file
            keep = seqs > last
            self.counters["duplicates_skipped"] += len(seqs) - int(keep.sum())
            where = where[keep]
            whole = False
            if len(where) == 0:
                return 0
        k = len(where)
        size = 128 if key == _KEY_UNKNOWN else DATASETS[name][1].itemsize
        part = raw if size == 128 else raw[:, :size]
        if whole:
            rows = part if part.flags.c_contiguous else np.ascontiguousarray(part)
        elif 128 % size == 0:  # one item copy per record: ~2x faster than a 2-D take, ~8x than part[where]
            rows = np.take(raw.view(f"V{size}")[:, 0], where)
        else:
            rows = np.take(part, where, axis=0)
        rows = rows.view(SLOT128 if key == _KEY_UNKNOWN else DATASETS[name][1]).reshape(k)
        if rows_out is not None:
            rows_out[where] = self.size[name] + np.arange(k, dtype=np.int64)
        return self._append_rows(name, rows)

    def _append_rows(self, name: str, rows: np.ndarray) -> int:
        k = len(rows)
        dsid = self._dsid[name]
        n0 = self.size[name]
        dsid.set_extent((n0 + k,))
        fspace = dsid.get_space()
        fspace.select_hyperslab((n0,), (k,))
        mspace = h5py.h5s.create_simple((k,))
        dsid.write(mspace, fspace, rows, mtype=self._mtype[name])
        self.size[name] = n0 + k
        self.last_seq[name] = int(rows["seq"][-1])
        self.counters["records_written"] += k
        return k

    def _check_seq(self, seqs: np.ndarray) -> None:
        nxt = self.next_seq
        s0 = int(seqs[0])
        # records at or below resume_seq are expected only while catching up after a restart
        catching_up = nxt == self.resume_seq + 1
        if s0 > nxt:
            self._hole(nxt, s0 - 1)
        elif s0 < nxt and not (catching_up and s0 <= self.resume_seq):
            self._regress(nxt - 1, s0)
        if len(seqs) > 1:
            steps = np.diff(seqs.view(np.int64))
            for b in np.flatnonzero(steps != 1):
                a, c = int(seqs[b]), int(seqs[b + 1])
                if c > a + 1:
                    if c - 1 >= max(nxt, a + 1):
                        self._hole(max(a + 1, nxt), c - 1)
                elif not (catching_up and c <= self.resume_seq):
                    self._regress(a, c)
        self.next_seq = max(nxt, int(seqs.max()) + 1)

    def _hole(self, lo: int, hi: int) -> None:
        self.counters["holes"] += 1
        self.counters["missing_records"] += hi - lo + 1
        self._say(f"SEQ HOLE in the records stream: seq {lo:,}..{hi:,} ({hi - lo + 1:,} records) never "
                  f"reached the writer ({self.path})", loud=True)

    def _regress(self, a: int, c: int) -> None:
        self.counters["seq_regressions"] += 1
        self._say(f"SEQ STEPPED BACK in the records stream: {a:,} then {c:,} ({self.path})", loud=True)

    # ------------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Make everything written safe from a crash of this process (in the OS) and visible to
        SWMR readers. :meth:`fsync_async` then puts it on disk."""
        self.file.flush()
        self._flushed_size = dict(self.size)
        self.counters["flushes"] += 1

    def fsync_async(self) -> bool:
        """Start putting everything flushed so far on disk in a background thread, unless the
        previous one is still running; True when started."""
        t = self._fsync_thread
        if t is not None and t.is_alive():
            return False
        self._fsync_thread = threading.Thread(target=self._fsync, args=(self.file.id.get_vfd_handle(),),
                                              name="livestack-writer-fsync", daemon=True)
        self._fsync_thread.start()
        return True

    def _fsync(self, fd: int) -> None:
        t0 = time.perf_counter_ns()
        os.fsync(fd)
        self.counters["fsyncs"] += 1
        st = self.fsync_stats
        if st is not None:  # procmetrics.WriterStats: fsync latency for /metrics
            dt = time.perf_counter_ns() - t0
            st.fsync_ns_sum += dt
            st.fsync_ns_last = dt
            st.fsync_ns_max = max(st.fsync_ns_max, dt)

    def wait_fsync(self) -> None:
        """Wait for the background fsync, if one runs."""
        if self._fsync_thread is not None:
            self._fsync_thread.join()
            self._fsync_thread = None

    def close(self, stop_time_ns: int | None = None, end: dict | None = None) -> None:
        """Flush, stamp the stop time and counters, close the file, drop the lock.

        ``end``: values for the end attributes (``end_reason``, ``harness_last_seq``,
        ``records_produced``, ``records_lost_disk_full``).
        """
        if self.file is None:
            return
        now = stop_time_ns or time.time_ns()
        a = self.file.attrs
        a["stop_time_ns"] = np.int64(now)
        a["stop_time"] = _now_iso(now)
        for k, v in (end or {}).items():
            if k in _END_ATTRS and k in a:
                a[k] = type(_END_ATTRS[k])(v)
        self.wait_fsync()
        a["writer_counters"] = _dumps(self.counters)
        self.file.flush()
        self._fsync(self.file.id.get_vfd_handle())
        self.file.close()
        self.file = None
        self.disk.drop_tail(self.path)
        self.disk.release_reserve()
        self._unlock(remove=True)

    def abandon(self) -> None:
        """Close without stamping a stop time (an error path)."""
        self.disk.release_reserve()
        if self.file is not None:
            self.wait_fsync()
            try:
                self.file.close()
            finally:
                self.file = None
        self.disk.drop_tail(self.path)
        self._unlock(remove=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_process(records_ring: str, path: str, attrs: dict, options: dict, stop) -> None:
    """Writer process entry point (see docs/CONTRACTS.md): :func:`livestack.records.writer_process.run_process`."""
    from livestack.records.writer_process import run_process as _run

    _run(records_ring, path, attrs, options, stop)
