"""The supervisor behind ``livestack run``: creates a session's shared memory, spawns and pins the
processes, watches their health, prints a one-line status, and shuts down in order.

    start:  remove leftovers of crashed sessions → create rings → writer → harness → venue/feed → control
    run:    every status interval print a line; react to a dead process:
              harness  → the venue sees it gone and cancels its resting orders (cancel-on-disconnect);
                         the supervisor then stops the session (nothing can trade without the harness)
              feed     → restarted with backoff; it resyncs its book from a fresh snapshot
              venue    → restarted with backoff (orders in flight stay in flight: see README)
              writer   → restarted; it resumes from the records ring's persisted position
                         (not when it exited EXIT_DISK_FULL: the disk is full, trading is halted)
              control  → restarted
    stop:   SIGTERM the harness (it stops taking market data, cancels on stop, drains, exits) →
            stop venue/feed/control → the writer drains the records ring to the file → unlink shm

Supervisor death (SIGKILL, OOM): every child polls ``getppid()`` (a parent-death signal would
fire on the death of the parent *thread* that forked it, not only of the process) and, once
orphaned, stops in the order a normal stop uses: the feed at once (md off); the harness at once
(SIGTERM: no more market data, SESSION_STOP cancels resting orders, drain the venue's answers);
venue, control and monitor once the harness is gone (the venue answers the stop-cancels first);
the writer once the harness is gone, draining the records ring to the file before it closes it.
Every process holds a shared flock on ``/dev/shm/ls.<session>.alive``; the last one out (the one
that can then take it exclusively) unlinks the session's shared memory.
"""

from __future__ import annotations

import datetime as _dt
import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from livestack.ipc import Ring, shm
from livestack.ipc.stopflag import StopFlag
from livestack.node import config as cfgmod
from livestack.records.diskspace import EXIT_DISK_FULL
from livestack.schema import RecordKind


#: how often an orphan check runs, and how long a child waits for the harness before stopping anyway
ORPHAN_POLL_S = 0.05
ORPHAN_WAIT_S = 60.0


def alive_path(session: str) -> str:
    """The session's liveness lock file (in /dev/shm, named like its segments, so the session's
    segment cleanup and ``shm.remove_stale`` remove it too)."""
    return os.path.join(shm.SHM_DIR, f"{shm.PREFIX}{session}.alive")


def hold_alive(session: str) -> int:
    """Take a shared lock on the session's liveness file; the kernel drops it when we die."""
    import fcntl

    fd = os.open(alive_path(session), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def last_one_out(session: str, fd: int | None) -> bool:
    """Drop our shared lock; if no live process of the session holds one any more, unlink the
    session's shared memory (and the lock file). True when we did."""
    import fcntl

    if fd is not None:
        os.close(fd)
    try:
        fd = os.open(alive_path(session), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    shm.remove_session(session)
    return True


def _still_stopping(session: str) -> bool:
    """True while a process of ``session`` holds its liveness lock (an orphaned session stopping)."""
    import fcntl

    try:
        fd = os.open(alive_path(session), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def remove_stale() -> list[str]:
    """``shm.remove_stale`` that spares sessions whose supervisor died but whose children are
    still stopping in order (a restart right after a supervisor crash must not pull their rings)."""
    dead = {}
    for name in shm.list_segments():
        m = shm._SESSION_RE.match(name[1:])
        if m and not shm.pid_alive(int(m.group(1))):
            dead.setdefault(name[1:].split(".")[1], []).append(name)
    removed = []
    for session, names in dead.items():
        if not _still_stopping(session):
            removed += [n for n in names if shm.unlink_segment(n)]
    return removed


def _pidfd(pid: int) -> int | None:
    """A pidfd of ``pid`` (opened while it surely is the harness: no pid-reuse race later)."""
    try:
        return os.pidfd_open(pid) if pid else None
    except OSError:
        return None  # already gone


def _wait_gone(fd: int | None, timeout: float) -> None:
    """Wait until the process of pidfd ``fd`` has ended (a zombie counts), at most ``timeout`` s."""
    import select

    if fd is not None:
        select.select([fd], [], [], timeout)


def _watch_parent(name: str, parent: int, harness_pid: int, harness_cpu) -> None:
    """Thread in every child: poll ``getppid()``; once the supervisor is gone stop this process
    in order (see the module docstring) by sending it the SIGTERM a normal stop sends."""
    import threading

    harness = _pidfd(harness_pid) if name not in ("harness", "feed") else None

    def run():
        if name == "harness":
            # never compete with the busy-spinning loop (SCHED_FIFO or not) for its core
            others = set(range(os.cpu_count() or 1)) - set(harness_cpu if isinstance(harness_cpu, (set, list))
                                                            else [harness_cpu])
            if others:
                try:
                    os.sched_setaffinity(0, others)  # 0 = the calling thread
                except OSError:
                    pass
        while os.getppid() == parent:
            time.sleep(ORPHAN_POLL_S)
        _ORPHANED.append(1)
        _wait_gone(harness, ORPHAN_WAIT_S)  # the venue answers the harness's stop-cancels first
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=run, name="livestack-orphan-watch", daemon=True).start()


_ORPHANED: list = []


def _child(target, cpu, args: tuple, kwargs: dict, parent: int, name: str = "", session: str = "",
           harness_pid: int = 0) -> None:
    """Runs in the spawned child: stop in order if the supervisor dies (``_watch_parent``),
    ignore Ctrl-C (the supervisor orchestrates), pin, run; the last process of an orphaned
    session out removes its shared memory."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    alive = hold_alive(session) if session else None
    cpus = {cpu} if isinstance(cpu, int) and cpu >= 0 else set(cpu or ())
    _watch_parent(name, parent, harness_pid, cpu)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        target(*args, **kwargs)
    finally:
        # done: a late SIGTERM (the orphan watch, racing a venue that stopped by itself) must not
        # turn a clean exit into death by signal (Python resets its handlers while finalizing)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if session and (_ORPHANED or os.getppid() != parent):
            last_one_out(session, alive)


@dataclass
class Managed:
    name: str
    target: object
    cpu: int
    args: tuple
    kwargs: dict = field(default_factory=dict)
    restart: bool = True
    proc: object = None
    restarts: int = 0
    next_restart: float = 0.0


class Supervisor:
    """One live session. ``start()``, then ``run()`` (blocks) or ``poll()`` from a test, then ``stop()``."""

    def __init__(self, cfg: dict, *, session: str | None = None, out=sys.stdout):
        self.cfg = cfg
        self.session = session or shm.new_session_id()
        self.out = out
        self.ctx = mp.get_context("spawn")
        self.stop_event = StopFlag(self.ctx)  # not mp.Event: a killed child could leave its lock held
        self.rings: dict = {}
        self.owned: list[Ring] = []
        self.procs: dict[str, Managed] = {}
        self.instruments = cfgmod.instruments(cfg)
        self.session_dir = os.path.join(cfg["session"]["records_dir"], _dt.date.today().isoformat())
        self.records_path = os.path.join(self.session_dir, f"{self.session}.h5")
        from livestack.secrets import private_dir

        private_dir(self.session_dir)  # session files and control sockets: created owner-only (0700)
        self.started_at = 0.0
        self._last = None
        self.stopping = False
        self.events: list[str] = []

    # ------------------------------------------------------------------------------------------
    def _ring(self, role: str, name: str, capacity: int, slot: int, kind: int = 0) -> str:
        full = shm.segment_name(self.session, name)
        self.owned.append(Ring.create(full, capacity, slot, kind))
        return full

    def _say(self, msg: str) -> None:
        self.events.append(msg)
        print(f"livestack: {msg}", file=self.out, flush=True)

    def start(self) -> None:
        self._preflight_disk()
        removed = remove_stale()
        if removed:
            self._say(f"removed {len(removed)} shared-memory segments left by a crashed session")
        cfg, rc = self.cfg, self.cfg["rings"]
        feed_kind, venue_kind = cfg["feed"]["kind"], cfg["venue"]["kind"]
        venue = venue_kind
        feed = "sim" if feed_kind == "sim" else feed_kind
        r = self.rings
        r["md"] = [self._ring("md", f"md.{feed}", rc["md_capacity"], 64)]
        r["orders"] = self._ring("orders", f"orders.{venue}", rc["orders_capacity"], 64, RecordKind.ORDER_CMD)
        r["exec"] = self._ring("exec", f"exec.{venue}", rc["exec_capacity"], 128, RecordKind.EXEC)
        r["cmd"] = self._ring("cmd", "cmd", rc["cmd_capacity"], 128, RecordKind.CONTROL_CMD)
        r["reply"] = self._ring("reply", "reply", rc["reply_capacity"], 128, RecordKind.CONTROL_REPLY)
        r["events"] = self._ring("events", "events", rc["events_capacity"], 128)
        r["records"] = self._ring("records", "records", rc["records_capacity"], 128)
        self.telemetry_name = self._create_telemetry()
        self._alive_fd = hold_alive(self.session)
        self.started_at = time.time()
        os.makedirs(self.session_dir, exist_ok=True)

        cpu = cfg["cpu"]
        if cfg["writer"]["enabled"]:
            from livestack.records import writer

            attrs = {"session": self.session, "config": cfg, "cpu": cpu,
                     "instruments": [i.__dict__ for i in self.instruments]}
            self._add("writer", writer.run_process, cpu["writer"],
                      (r["records"], self.records_path, attrs, {"flush_interval_ms": cfg["writer"]["flush_interval_ms"],
                                                                 "fsync_interval_ms": cfg["writer"]["fsync_interval_ms"],
                                                                 "min_free_mb": cfg["writer"]["min_free_mb"],
                                                                 "telemetry": self.telemetry_name},
                       self.stop_event))
        from livestack.harness import process as harness

        self._add("harness", harness.run_process, cpu["harness"], (r, cfg, self.telemetry_name), restart=False)
        self._spawn(self.procs["harness"])
        harness_pid = self.procs["harness"].proc.pid
        if "writer" in self.procs:
            self.procs["writer"].args[3]["harness_pid"] = harness_pid
        vopts = dict(cfg["venue"]["options"], harness_pid=harness_pid)
        if venue_kind == "sim":
            from livestack.venues import sim

            self._add("venue", sim.run_process, cpu["venue"],
                      (r["orders"], r["exec"], self.instruments, vopts, self.stop_event),
                      {"md_ring": r["md"][0] if feed_kind == "sim" else None})
        else:
            from livestack.venues import fix

            self._add("venue", fix.run_process, cpu["venue"],
                      (r["orders"], r["exec"], self.instruments, vopts, self.stop_event))
        if feed_kind == "binance":
            from livestack.feeds import binance_ws

            self._add("feed", binance_ws.run_process, cpu["feed"],
                      (r["md"][0], self.instruments, cfg["feed"]["options"], self.stop_event))
        elif feed_kind == "sim" and venue_kind != "sim":
            from livestack.feeds import sim as simfeed  # the simulated market without the simulated venue

            self._add("feed", simfeed.run_process, cpu["feed"],
                      (r["md"][0], self.instruments, cfg["feed"]["options"], self.stop_event))
        if cfg["control"]["enabled"]:
            self._start_control()
        if cfg["telemetry"]["metrics_port"] and self.telemetry_name:
            from livestack.telemetry import exporter

            self._add("monitor", exporter.run_process, cpu["monitor"],
                      (self.telemetry_name, {"port": cfg["telemetry"]["metrics_port"]}, self.stop_event))
        for m in self.procs.values():
            if m.proc is None:
                self._spawn(m)
        self._say(f"session {self.session} started: " + ", ".join(
            f"{m.name} pid {m.proc.pid}" + (f" cpu {m.cpu}" if m.cpu >= 0 else "") for m in self.procs.values()))

    def _preflight_disk(self) -> None:
        """Refuse to start a session whose records disk has less than ``writer.min_free_mb``
        free (the writer checks again whenever it starts, and then watches it)."""
        from livestack.records import diskspace

        w = self.cfg["writer"]
        if not w["enabled"] or not w["min_free_mb"]:
            return
        os.makedirs(self.session_dir, exist_ok=True)
        guard = diskspace.DiskGuard(self.session_dir, w["min_free_mb"])
        if not guard.preflight():
            raise diskspace.DiskFull(f"records disk too full to start: {self.session_dir} has "
                                     f"{guard.free / 2**20:.1f} MiB free, writer.min_free_mb = {w['min_free_mb']:g}")

    def _create_telemetry(self):
        try:
            from livestack.telemetry.block import TelemetryBlock
        except ImportError:
            return None
        name = shm.segment_name(self.session, "telemetry")
        self.telemetry = TelemetryBlock.create(name)
        return name

    def _start_control(self):
        try:
            from livestack.control import server
        except ImportError:
            self._say("control surface not available in this build")
            return
        opts = dict(self.cfg["control"])
        opts["strategy"] = self.cfg["strategy"]
        opts["instruments"] = [i.__dict__ for i in self.instruments]
        if not opts.get("endpoint"):
            opts["endpoint"] = f"ipc://{self._socket_path('control')}"
        self.control_endpoint = opts["endpoint"]
        self._add("control", server.run_process, self.cfg["cpu"]["control"],
                  (self.rings["cmd"], self.rings["reply"], self.rings["events"], self.telemetry_name, opts,
                   self.stop_event))

    def _socket_path(self, what: str) -> str:
        """``<session dir>/<session>.<what>.sock``, or a private directory under /tmp when that
        path is too long for a unix socket (108 bytes with the ``.events`` sibling's suffix)."""
        path = os.path.join(os.path.abspath(self.session_dir), f"{self.session}.{what}.sock")
        if len(path) + len(".events") <= 100:
            return path
        short = os.path.join("/tmp", f"livestack-{os.getuid()}")
        os.makedirs(short, mode=0o700, exist_ok=True)
        os.chmod(short, 0o700)
        return os.path.join(short, f"{self.session}.{what}.sock")

    def _add(self, name, target, cpu, args, kwargs=None, restart=True):
        self.procs[name] = Managed(name, target, cpu, args, kwargs or {}, restart)

    def _affinity(self, m: Managed):
        """A process's CPU from config, or (cpu = -1) every CPU but the harness's: only the harness
        busy-spins, and nothing else should ever be scheduled onto its core."""
        if m.cpu >= 0 or m.name == "harness":
            return m.cpu
        others = set(range(os.cpu_count() or 1)) - {self.cfg["cpu"]["harness"]}
        return sorted(others) or -1

    def _spawn(self, m: Managed) -> None:
        h = self.procs.get("harness")
        harness_pid = h.proc.pid if h is not None and h.proc is not None else 0
        m.proc = self.ctx.Process(target=_child, args=(m.target, self._affinity(m), m.args, m.kwargs, os.getpid(),
                                                       m.name, self.session, harness_pid),
                                  name=f"livestack-{m.name}")
        m.proc.start()

    # ------------------------------------------------------------------------------------------
    def poll(self) -> bool:
        """One health check; returns False when the session must end (harness gone)."""
        now = time.monotonic()
        for m in self.procs.values():
            if m.proc.is_alive() or self.stopping:
                continue
            if m.name == "harness":
                self._say(f"harness exited (code {m.proc.exitcode}); venues cancel on disconnect; stopping session")
                return False
            if m.name == "writer" and m.proc.exitcode == EXIT_DISK_FULL:
                if m.restart:
                    m.restart = False
                    self._say("writer stopped: the records disk is full (trading halted); not restarting it")
                continue
            if not m.restart:
                continue
            if m.next_restart == 0.0:
                delay = min(0.5 * 2 ** m.restarts, 10.0)
                m.next_restart = now + delay
                self._say(f"{m.name} exited (code {m.proc.exitcode}); restarting in {delay:.1f}s")
            elif now >= m.next_restart:
                m.restarts += 1
                m.next_restart = 0.0
                if m.name == "venue":  # the venue needs the current harness pid for cancel-on-disconnect
                    m.args[3]["harness_pid"] = self.procs["harness"].proc.pid
                self._spawn(m)
                self._say(f"{m.name} restarted (pid {m.proc.pid}, restart #{m.restarts})")
        return True

    def status(self) -> dict:
        """Counters for the status line, from ring positions (and the telemetry block when present)."""
        r = {}
        md = self.owned[0]
        orders, execs, records = (self._owned(self.rings[k]) for k in ("orders", "exec", "records"))
        r["md"] = md.head
        r["orders"] = orders.tail
        r["exec"] = execs.head
        r["records"] = records.tail
        r["records_written"] = records.head
        if getattr(self, "telemetry", None) is not None:
            try:
                snap = self.telemetry.snapshot()
                r.update(telemetry=snap)
            except Exception:  # noqa: BLE001 - a torn or partial block must not kill the supervisor
                pass
        return r

    def _owned(self, name):
        for ring in self.owned:
            if ring.name == name:
                return ring
        raise KeyError(name)

    def status_line(self) -> str:
        s = self.status()
        now = time.monotonic()
        last = self._last or (now - 1e-9, s)
        dt = now - last[0]
        rate = (s["md"] + s["exec"] - last[1]["md"] - last[1]["exec"]) / dt if dt > 0 else 0.0
        self._last = (now, s)
        t = s.get("telemetry") or {}
        extra = ""
        if t:
            c = t.get("counters", {})
            pnl = "  ".join(self._position_text(p) for p in t.get("positions", []))
            extra = f"  fills {c.get('fills', 0):,}  {pnl}  {t.get('trading_state', '?')}"
        return (f"[{time.time() - self.started_at:6.1f}s] events/s {rate:10,.0f}  md {s['md']:,}  "
                f"orders {s['orders']:,}  exec {s['exec']:,}  records {s['records']:,} "
                f"(written {s['records_written']:,}){extra}")

    @staticmethod
    def _position_text(p: dict) -> str:
        from livestack.schema import format_fixed

        qd, pd = p.get("qty_decimals", 0), p.get("price_decimals", 0)
        pnl = p.get("realized_pnl", 0) + p.get("unrealized_pnl", 0)  # price units x qty units
        return (f"{p.get('symbol', '?')} pos {format_fixed(p.get('net_qty', 0), qd)} "
                f"pnl {format_fixed(pnl, pd + qd)}")

    def run(self) -> int:
        """Block until Ctrl-C, SIGTERM, the configured duration, or the harness ends."""
        interrupted = []
        signal.signal(signal.SIGTERM, lambda *_: interrupted.append(1))
        duration = self.cfg["session"]["duration_s"]
        every = self.cfg["session"]["status_interval_s"]
        next_status = time.monotonic() + every if every > 0 else float("inf")
        end = time.monotonic() + duration if duration > 0 else float("inf")
        try:
            while not interrupted and time.monotonic() < end:
                if not self.poll():
                    break
                if time.monotonic() >= next_status:
                    print(self.status_line(), file=self.out, flush=True)
                    next_status += every
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        return self.stop()

    def stop(self, timeout: float = 30.0) -> int:
        """Orderly shutdown; returns 0 when every process ended by itself."""
        if self.stopping:
            return 0
        self.stopping = True
        rc = 0
        h = self.procs.get("harness")
        if h and h.proc.is_alive():
            os.kill(h.proc.pid, signal.SIGTERM)
            h.proc.join(timeout=timeout)
        self.stop_event.set()
        order = ["feed", "venue", "control", "monitor", "writer"]
        for name in order:
            m = self.procs.get(name)
            if m and m.proc.is_alive():
                m.proc.join(timeout=timeout)
        for m in self.procs.values():
            if m.proc.is_alive():
                self._say(f"{m.name} did not stop within {timeout}s; killing it")
                m.proc.kill()
                m.proc.join(timeout=5)
                rc = 1
        self._say(f"session {self.session} stopped; records in {self.records_path}")
        if getattr(self, "telemetry", None) is not None:
            try:
                self.telemetry.close()
            except Exception:  # noqa: BLE001
                pass
        for ring in self.owned:
            ring.close()
        shm.remove_session(self.session)
        if getattr(self, "_alive_fd", None) is not None:
            os.close(self._alive_fd)
            self._alive_fd = None
        return rc
