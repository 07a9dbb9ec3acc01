"""Crash-only recovery of the harness (issue 14): a restarted harness rebuilds its core from the
session file's journal and continues the session.

::

    supervisor: harness died (not exit 0) ──▶ a ready warm standby (livestack/harness/standby.py)
                    takes over; none ready: spawn a fresh harness
    the new harness (either way): attach rings (the dead one's roles were freed by the kernel)
                 records ring tail > 0?  (a previous harness wrote)
                 rebuild(): wait until the writer has written, flushed and released everything
                     (head == tail, bounded); JournalFollower.catch_up() runs the journal entries
                     its core has not run yet through the same deterministic core -- the tail only
                     for a warm standby (it ran the rest while following), all of it for a fresh
                     harness -- orders, positions, PnL, risk counters, kill latch, trading state
                 input committed but not released by the dead harness? ──▶ release it (no
                     second journal entry: compared byte for byte with the last journaled input)
                 harness.resume(applied)   hseq continues; record seq = records ring tail
                 inject RECOVER(epoch, orders-ring tail)  ──▶ core: RECOVERING, STATUS per open order
                 run as usual; the venue's answers bring it back to its previous state

Where the time of a recovery goes (bench/bench_chaos.py, the log line "restarted: ..."): without a
standby, process start and imports (~0.5 s idle, seconds on a loaded machine) and reading the
journal (~1 us an input: ~1 s per million inputs; the core itself runs ~0.1 us an input); with a
warm standby, the writer's last flush and the tail written since the standby's last pass
(``standby_poll_s``), then the venue's status round trip.

The harness commits each input's journal entry together with everything it caused in one
records-ring commit, before any order leaves (``loop.pyx``), so the record stream stays
contiguous across the restart and ``livestack replay --verify`` passes over the whole file.

Options (``[recovery]`` in the session config, :class:`RecoveryConfig`).
"""

from __future__ import annotations

import logging
import time

import msgspec
import numpy as np

log = logging.getLogger(__name__)


class RecoveryConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``[recovery]``: harness restart and "nothing waits forever" (issue 14)."""

    restart_harness: bool = True          # the supervisor restarts a harness that died (else the session ends)
    max_restarts: int = 1000              # harness restarts per session before the session stops
    writer_wait_s: float = 30.0           # a restarted harness waits this long for the writer to catch up
    recover_timeout_s: float = 5.0        # RECOVERING longer: ANOMALY RECON_TIMEOUT, HALTED
    pending_timeout_s: float = 10.0       # an order pending longer gets a STATUS request; unexplained as
                                          # long again: ANOMALY PENDING_TIMEOUT, instrument halted (0 = off)
    reject_storm_n: int = 50              # venue rejects within reject_storm_window_s = a storm (0 = off):
    reject_storm_window_s: float = 1.0    # throttled for a window, the next storm halts the instrument
    # (defaults: a venue answers in milliseconds, so 10 s pending is a lost message, not a slow
    # venue; 50 rejects in a second on one instrument is a misconfigured order, not the market:
    # the FIX 4.2 "HandlInst missing" storm of issue 14 was ~580/s. Validated by the chaos run
    # and the sim / FIX / Binance suites. A config from before [recovery] existed: both off)
    standby: int = 1                      # warm standby harnesses following the session file (0 = none: a
                                          # restart re-runs the whole journal in a fresh process)
    standby_poll_s: float = 0.1           # how often a standby reads the journal's new entries (it sleeps between)
    standby_fork: bool = True             # a promoted standby forks its successor, warm at once (else the
                                          # supervisor spawns one, which re-runs the whole journal)

    def __post_init__(self):
        for name in ("writer_wait_s", "recover_timeout_s", "pending_timeout_s", "reject_storm_window_s",
                     "standby_poll_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"recovery.{name} must be >= 0")
        if self.reject_storm_n < 0 or self.max_restarts < 0 or not 0 <= self.standby <= 4:
            raise ValueError("recovery.reject_storm_n and recovery.max_restarts must be >= 0, recovery.standby 0..4")
        if self.standby and self.standby_poll_s <= 0:
            raise ValueError("recovery.standby_poll_s must be > 0 when recovery.standby is set")
        if self.reject_storm_n and self.reject_storm_window_s <= 0:
            raise ValueError("recovery.reject_storm_window_s must be > 0 when reject_storm_n is set")


def parse(section: dict | None) -> RecoveryConfig:
    """The ``[recovery]`` table as a RecoveryConfig; ValueError naming the key on bad input."""
    try:
        return msgspec.convert(dict(section or {}), RecoveryConfig)
    except (msgspec.ValidationError, TypeError) as e:
        raise ValueError(f"[recovery]: {e}") from None


def core_kwargs(cfg: dict) -> dict:
    """The Core constructor arguments of ``[recovery]``. A config without the section (a session
    file from before it existed) gets the timeouts it ran with: off, so its replay still agrees."""
    r = parse(cfg.get("recovery"))
    if "recovery" not in cfg:
        r = msgspec.structs.replace(r, pending_timeout_s=0.0, reject_storm_n=0)
    return {"recover_timeout_ns": int(r.recover_timeout_s * 1e9), "pending_timeout_ns": int(r.pending_timeout_s * 1e9),
            "reject_storm_n": int(r.reject_storm_n), "reject_storm_window_ns": int(r.reject_storm_window_s * 1e9)}


def count_recovers(inputs: np.ndarray) -> int:
    """How many RECOVER inputs (harness restarts) the journal holds: the next epoch is this + 1."""
    from livestack.schema import ControlCmdType, DTYPES, RecordKind

    cc = inputs[inputs["kind"] == int(RecordKind.CONTROL_CMD)]
    if not len(cc):
        return 0
    body = np.frombuffer(cc.tobytes(), dtype=DTYPES["CONTROL_CMD"]) if cc.dtype.itemsize == 128 else cc
    return int(np.count_nonzero(body["cmd"] == int(ControlCmdType.RECOVER)))


def wait_writer(records, timeout_s: float) -> None:
    """Until the writer has flushed and released every committed record (it releases only after a
    flush): then the session file holds the whole journal."""
    deadline = time.monotonic() + timeout_s
    while records.head != records.tail:
        if time.monotonic() > deadline:
            raise RuntimeError(f"recovery: the records writer did not catch up within {timeout_s:g}s "
                               f"({records.tail - records.head} records unwritten); cannot rebuild the core")
        time.sleep(0.002)


def release_taken_input(rings: list, last: np.ndarray) -> str | None:
    """The dead harness may have committed an input's journal entry and died before releasing the
    input from its ring: that input is then both in the journal and still at its ring's head.
    Release it (byte-identical to the last journaled input, seq and flags aside). Returns the
    ring's name, or None."""
    want = np.frombuffer(np.ascontiguousarray(last).tobytes(), np.uint8)[:128].copy()
    for ring in rings:
        if ring.size() == 0:
            continue
        rec = ring.peek()
        if rec is None:
            continue
        got = np.zeros(128, np.uint8)
        raw = np.frombuffer(np.ascontiguousarray(rec).tobytes(), np.uint8)[:ring.slot_size]
        got[:len(raw)] = raw
        a, b = got.copy(), want.copy()
        a[8:16] = b[8:16] = 0      # header seq: the journal copy carries the record-stream seq
        a[3] &= ~np.uint8(4)       # JOURNAL flag (read_journal clears it already)
        b[3] &= ~np.uint8(4)
        if np.array_equal(a[:ring.slot_size], b[:ring.slot_size]):
            ring.release(1)
            return ring.name
    return None


class JournalFollower:
    """A core kept up to date with a session file's journal, a batch of new entries at a time.

    A warm standby (``livestack.harness.standby``) calls :meth:`catch_up` every
    ``standby_poll_s`` while the harness runs; when it takes over, only the tail written since
    is left to run. A restarted harness without a standby uses one too, from entry 0. The file
    is opened for each pass (HDF5 SWMR, without the file lock, which the writer does not take
    either: ``records.writer``) and closed again, so a writer restart never
    leaves this reader on stale metadata.

    The core gets exactly what a replay gives it: entry k as input hseq k + 1, in order
    (``Core.run_count`` over consecutive batches is the same as over the whole journal).
    """

    def __init__(self, core, path: str, batch: int = 1 << 16):
        self.core = core
        self.path = path
        self.batch = batch
        self.applied = 0        # journal entries run through the core (= hseq of the last one)
        self.recovers = 0       # RECOVER inputs among them (the next epoch is this + 1)
        self.last = None        # the last entry run (SLOT128, one row): release_taken_input compares it
        self.errors = 0         # passes that stopped on a read error (the file being rewritten or reopened)
        self.warm = False       # a standby's: it ran the whole journal as it was at its start

    def catch_up(self, interrupted=None) -> bool:
        """Run the entries the journal gained since the last pass. Returns True when the pass
        reached the end of the journal as the file shows it now, False when it stopped on a read
        error or because ``interrupted()`` (checked between batches) said so: nothing is ever
        half-applied (a batch reaches the core only once it was read whole), the next pass goes
        on from there."""
        import h5py

        from livestack.records.replay import consumed_inputs

        try:
            f = h5py.File(self.path, "r", libver="latest", swmr=True, locking=False)
        except OSError:  # not created yet, or a restarting writer holds it for a moment
            self.errors += 1
            return False
        try:
            if "journal" not in f:
                return True
            n = int(f["journal"].shape[0])
            for part in consumed_inputs(f, self.applied, n, self.batch):
                if interrupted is not None and interrupted():
                    return False
                self.core.run_count(part, self.applied + 1)
                self.recovers += count_recovers(part)
                self.applied += len(part)
                self.last = part[-1:].copy()
            return True
        except (OSError, IndexError, KeyError, ValueError):
            # an index entry whose row this reader cannot see yet (SWMR: the kinds' datasets and
            # the journal are refreshed one by one), or a file being reopened: next pass
            self.errors += 1
            return False
        finally:
            f.close()


def rebuild(core, follower: JournalFollower | None, records, path: str, cfg: dict, input_rings: list) -> JournalFollower:
    """A restarted harness's core from the session file: wait until the writer has flushed every
    record of the dead harness, run the journal entries ``follower`` has not run yet (all of them
    without a standby), release an input the dead harness journaled but did not release.
    Returns the follower (``applied`` inputs, ``recovers`` RECOVERs). Bounded: RuntimeError when
    the writer does not catch up or the file stays unreadable for ``writer_wait_s``."""
    r = parse(cfg.get("recovery"))
    t0 = time.monotonic()
    wait_writer(records, r.writer_wait_s)
    t1 = time.monotonic()
    follower = follower or JournalFollower(core, path)
    before = follower.applied
    deadline = time.monotonic() + r.writer_wait_s
    while not follower.catch_up():  # every record is flushed: the journal in the file is complete
        if time.monotonic() > deadline:
            raise RuntimeError(f"recovery: {path} stayed unreadable for {r.writer_wait_s:g}s; cannot rebuild the core")
        time.sleep(0.005)
    if follower.applied:
        release_taken_input(input_rings, follower.last)
    t2 = time.monotonic()
    log.warning("restarted: core at %s journaled inputs (%s run now, %s by the standby before): writer %.0f ms, "
                "journal tail %.0f ms", f"{follower.applied:,}", f"{follower.applied - before:,}", f"{before:,}",
                (t1 - t0) * 1e3, (t2 - t1) * 1e3)
    return follower
