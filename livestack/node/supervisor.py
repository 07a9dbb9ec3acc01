"""The supervisor behind ``livestack run``: creates a session's shared memory, spawns and pins the
processes, watches their health, prints a one-line status, and shuts down in order.

    start:  remove leftovers of crashed sessions → create rings → writer → harness → venues/feeds → control
            (one process per [[venues]] / [[feeds]] entry, each with its own rings: node/launch.py)
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
import logging
import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from livestack.ipc import Ring, shm
from livestack.ipc.stopflag import StopFlag
from livestack.node import config as cfgmod
from livestack.node import launch, markets, standby
from livestack.records.diskspace import EXIT_DISK_FULL
from livestack.schema import RecordKind


#: how often an orphan check runs, and how long a child waits for the harness before stopping anyway
ORPHAN_POLL_S = 0.05
ORPHAN_WAIT_S = 60.0

#: ``livestack run`` exit codes (README "Exit codes", ``livestack run --help``)
EXIT_OK = 0            # stopped as asked (duration, Ctrl-C, SIGTERM), every process ended cleanly
EXIT_FAILED = 1        # a process failed: the harness died or was killed, a fatal error, a crash loop
EXIT_REFUSED = 2       # refused to start: bad config, CPU taken by another harness, port in use, disk full
EXIT_HANGUP = 128 + signal.SIGHUP    # SIGHUP (terminal gone): stopped in order
EXIT_PIPE = 128 + signal.SIGPIPE     # stdout closed (``livestack run | head``): stopped in order

#: a child's exit status that means "do not restart me: stop the session" (it reported why)
EXIT_CHILD_FATAL = 3
#: a restartable process that fails this many times in a row, each within QUICK_FAIL_S of its
#: start, is in a crash loop: the session stops instead of restarting it forever
MAX_QUICK_FAILS = 5
QUICK_FAIL_S = 10.0
RESTART_DELAY_S = 0.25  # a feed/venue/writer/control process that died after a healthy run restarts after this

#: per-CPU lock files: the harness holds one exclusively for its life (the kernel drops it on death)
CPU_LOCK_DIR = os.environ.get("LIVESTACK_CPU_LOCK_DIR", "/dev/shm")


class StartRefused(RuntimeError):
    """The session cannot start (its CPU or port is taken): nothing was started."""


def cpu_lock_path(cpu: int) -> str:
    return os.path.join(CPU_LOCK_DIR, f"livestack-cpu{cpu}.lock")


def take_cpu_lock(cpu: int, session: str) -> int:
    """Lock ``cpu`` for this process (the harness) or raise StartRefused naming its holder."""
    import fcntl

    fd = os.open(cpu_lock_path(cpu), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown session"
        os.close(fd)
        raise StartRefused(f"CPU {cpu} is taken by another livestack harness ({holder}; lock "
                           f"{cpu_lock_path(cpu)}): choose another cpu.harness, or stop that session") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"session {session} pid {os.getpid()}".encode(), 0)
    return fd


def check_cpu_free(cpu: int) -> None:
    """StartRefused when a live harness holds ``cpu``'s lock (checked again by the harness itself)."""
    import fcntl

    try:
        fd = os.open(cpu_lock_path(cpu), os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two checks never refuse each other
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown session"
        raise StartRefused(f"CPU {cpu} is taken by another livestack harness ({holder}; lock "
                           f"{cpu_lock_path(cpu)}): choose another cpu.harness, or stop that session") from None
    finally:
        os.close(fd)


def check_port_free(port: int, addr: str = "127.0.0.1") -> None:
    """StartRefused when the metrics exporter could not bind ``addr:port``."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the exporter's HTTP server does
        try:
            s.bind((addr, port))
        except OSError as e:
            raise StartRefused(f"telemetry.metrics_port {port} is not free on {addr} ({e.strerror}): another "
                               "stack or program serves it; choose another port (0: no exporter)") from None


class SafeStream:
    """A text stream that survives its reader going away (``livestack run | head``): the first
    broken pipe sets ``broken`` and later writes go nowhere, instead of raising in the middle of
    a stop."""

    def __init__(self, stream):
        self.stream = stream
        self.broken = False

    def write(self, text):
        if not self.broken:
            try:
                return self.stream.write(text)
            except (OSError, ValueError):
                self._broke()
        return len(text)

    def flush(self):
        if not self.broken:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self._broke()

    def reader_gone(self) -> bool:
        """True once the reading end of a pipe on this stream was closed (``| head`` exited),
        noticed without writing: a quiet stack stops too."""
        if self.broken:
            return True
        try:
            import select
            import stat

            fd = self.stream.fileno()
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                return False
            p = select.poll()
            p.register(fd, 0)  # POLLERR/POLLHUP are always reported
            if p.poll(0):
                self._broke()
        except (OSError, ValueError, AttributeError):
            pass
        return self.broken

    def _broke(self):
        self.broken = True
        try:  # the interpreter's final flush of this fd must not fail either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name):
        return getattr(self.stream, name)


def alive_path(session: str) -> str:
    """The session's liveness lock file (in /dev/shm, named like its segments, so the session's
    segment cleanup and ``shm.remove_stale`` remove it too)."""
    return os.path.join(shm.SHM_DIR, f"{shm.PREFIX}{session}.alive")


def harness_pid_path(session: str) -> str:
    """The pid of the session's current harness (rewritten at each harness restart, issue 14), so
    an orphaned child waits for the harness that runs now, not the one it was started with."""
    return os.path.join(shm.SHM_DIR, f"{shm.PREFIX}{session}.harness")


def _current_harness(session: str, fallback: int) -> int:
    try:
        with open(harness_pid_path(session)) as f:
            return int(f.read().strip() or 0) or fallback
    except (OSError, ValueError):
        return fallback


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


def _watch_parent(name: str, parent: int, harness_pid: int, harness_cpu, session: str = "",
                  parent_fd: int | None = None) -> None:
    """Thread in every child: poll ``getppid()``; once the supervisor is gone stop this process
    in order (see the module docstring) by sending it the SIGTERM a normal stop sends.
    ``parent_fd``: a pidfd of the supervisor, for a process that is not its child (a standby
    forked by another standby, ``livestack.harness.standby``): gone = the pidfd is readable."""
    import select
    import threading

    role = launch.role(name)  # feed.spot, venue.a: a feed, a venue
    harness = _pidfd(harness_pid) if role not in ("harness", "feed") else None

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
        if parent_fd is not None:
            select.select([parent_fd], [], [])
        else:
            while os.getppid() == parent:
                time.sleep(ORPHAN_POLL_S)
        _ORPHANED.append(1)
        now = _current_harness(session, harness_pid) if session and role not in ("harness", "feed") else harness_pid
        if now == os.getpid():  # a standby that became the harness: stop at once, as a harness does
            os.kill(os.getpid(), signal.SIGTERM)
            return
        _wait_gone(_pidfd(now) if now != harness_pid else harness, ORPHAN_WAIT_S)  # the venue answers the harness's stop-cancels first
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=run, name="livestack-orphan-watch", daemon=True).start()


_ORPHANED: list = []
_CPU_LOCKS: list = []
#: this child's shared flock on the session's liveness file (``hold_alive``), for a forked standby
_ALIVE: list = []


def exit_for(e: BaseException) -> tuple[int, str]:
    """A child's exit status and its one-line reason for the exception that ended it: fatal (no
    restart, the session stops) for a refused start, a port taken, or any exception with a true
    ``fatal`` attribute (e.g. a venue that gave up logging on after its retries); else 1."""
    fatal = (isinstance(e, StartRefused) or (isinstance(e, OSError) and e.errno == 98)  # EADDRINUSE
             or bool(getattr(e, "fatal", False)))
    why = str(e) if isinstance(e, StartRefused) else f"{type(e).__name__}: {e}"
    return (EXIT_CHILD_FATAL if fatal else 1), why


def _child(target, cpu, args: tuple, kwargs: dict, parent: int, name: str = "", session: str = "",
           harness_pid: int = 0, report=None) -> None:
    """Runs in the spawned child: stop in order if the supervisor dies (``_watch_parent``),
    ignore Ctrl-C and SIGHUP (the supervisor orchestrates), survive a closed stdout, lock the
    harness's CPU, pin, run; a failure is reported to the supervisor on ``report`` as one line;
    the last process of an orphaned session out removes its shared memory."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.stdout, sys.stderr = SafeStream(sys.stdout), SafeStream(sys.stderr)
    from livestack import logs

    logs.setup_from_env(name, session)
    alive = hold_alive(session) if session else None
    _ALIVE[:] = [alive]
    cpus = ({cpu} if cpu >= 0 else set()) if isinstance(cpu, int) else set(cpu or ())  # -1: any CPU
    try:
        if name == "harness" and cpus:
            _CPU_LOCKS.append(take_cpu_lock(min(cpus), session))  # held (open) for the process's life
        _watch_parent(name, parent, harness_pid, cpu, session)
        if cpus:
            os.sched_setaffinity(0, cpus)
        target(*args, **kwargs)
    except BaseException as e:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        code, why = exit_for(e)
        if report is not None:
            try:
                report.send(why)
            except OSError:
                pass
        if os.environ.get("LIVESTACK_TRACEBACK"):
            import traceback

            traceback.print_exc()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if session and (_ORPHANED or os.getppid() != parent):
            last_one_out(session, alive)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
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
    started: float = 0.0
    quick_fails: int = 0
    report: object = None      # read end of the child's failure-report pipe
    why: str = ""              # what the child reported before it failed


class Supervisor:
    """One live session. ``start()``, then ``run()`` (blocks) or ``poll()`` from a test, then ``stop()``."""

    def __init__(self, cfg: dict, *, session: str | None = None, out=sys.stdout, quiet: bool = True):
        self.cfg = cfg
        self.quiet = quiet
        self.session = session or shm.new_session_id()
        self.out = out if isinstance(out, SafeStream) else SafeStream(out)
        self.ctx = mp.get_context("spawn")
        self.stop_event = StopFlag(self.ctx)  # not mp.Event: a killed child could leave its lock held
        self.rings: dict = {}
        self.owned: list[Ring] = []
        self.procs: dict[str, Managed] = {}
        self.instruments = cfgmod.instruments(cfg)
        self.session_dir = os.path.join(cfg["session"]["records_dir"], _dt.date.today().isoformat())
        name = cfg["session"]["name"]  # in the file name unless it is the default's "default"
        self.log_path = os.path.join(self.session_dir, (f"{name}-" if name != "default" else "") + f"{self.session}.log")
        self.records_path = os.path.join(self.session_dir, (f"{name}-" if name != "default" else "")
                                         + f"{self.session}.h5")
        from livestack.secrets import private_dir

        private_dir(self.session_dir)  # session files and control sockets: created owner-only (0700)
        self.started_at = 0.0
        self._last = None
        self.stopping = False
        self.events: list[str] = []
        #: why the session ended badly (None: it did not); ``run()`` returns its exit code
        self.failure: str | None = None
        self.end_code = EXIT_OK
        from livestack.harness import recovery

        self._recovery = recovery.parse(cfg.get("recovery"))
        self.harness_restart = False
        self.harness_restarts = 0

    # ------------------------------------------------------------------------------------------
    def _ring(self, role: str, name: str, capacity: int, slot: int, kind: int = 0) -> str:
        full = shm.segment_name(self.session, name)
        self.owned.append(Ring.create(full, capacity, slot, kind))
        return full

    def _say(self, msg: str) -> None:
        self.events.append(msg)
        logging.getLogger("livestack.node.supervisor").info(msg)
        self._line(f"livestack: {msg}")

    def _line(self, text: str) -> None:
        """One write per line: under PYTHONUNBUFFERED, print() writes the text and its newline
        separately, and a child's log line sharing the pipe can land between them."""
        self.out.write(text + "\n")
        self.out.flush()

    def start(self) -> None:
        self._load_venue_filters()
        self._preflight_disk()
        check_cpu_free(self.cfg["cpu"]["harness"])
        if self.cfg["telemetry"]["metrics_port"]:
            check_port_free(self.cfg["telemetry"]["metrics_port"])
        removed = remove_stale()
        if removed:
            self._say(f"removed {len(removed)} shared-memory segments left by a crashed session")
        cfg, rc = self.cfg, self.cfg["rings"]
        r = self.rings
        launch.create_rings(self)  # md.<feed> per feed, orders/exec.<venue> per venue
        r["cmd"] = self._ring("cmd", "cmd", rc["cmd_capacity"], 128, RecordKind.CONTROL_CMD)
        r["reply"] = self._ring("reply", "reply", rc["reply_capacity"], 128, RecordKind.CONTROL_REPLY)
        r["events"] = self._ring("events", "events", rc["events_capacity"], 128)
        r["records"] = self._ring("records", "records", rc["records_capacity"], 128)
        self.telemetry_name = self._create_telemetry()
        self._open_metrics()
        self._alive_fd = hold_alive(self.session)
        self.started_at = time.time()
        os.makedirs(self.session_dir, exist_ok=True)

        cpu = cfg["cpu"]
        if cfg["writer"]["enabled"]:
            from livestack.records import writer

            attrs = {"session": self.session, "config": cfg, "cpu": cpu,
                     "instruments": [i.__dict__ for i in self.instruments],
                     **markets.summary(cfg)}  # feeds, venues: names, kinds, instrument ids
            attrs.update(writer.session_identity(cfg, "live", self.instruments))  # mode, strategy identity (SDK)
            self._add("writer", writer.run_process, cpu["writer"],
                      (r["records"], self.records_path, attrs, {"flush_interval_ms": cfg["writer"]["flush_interval_ms"],
                                                                 "fsync_interval_ms": cfg["writer"]["fsync_interval_ms"],
                                                                 "min_free_mb": cfg["writer"]["min_free_mb"],
                                                                 "nats": cfg["writer"].get("nats") or None,
                                                                 "telemetry": self.telemetry_name},
                       self.stop_event))
        from livestack.harness import process as harness

        # issue 14: a dead harness is restarted and rebuilds its core from the session file
        # (livestack/harness/recovery.py); the venue then keeps its orders across the restart
        # (no cancel-on-disconnect) and the new harness asks it for their status
        self.harness_restart = self._recovery.restart_harness and cfg["writer"]["enabled"]
        self._add("harness", harness.run_process, cpu["harness"], (r, cfg, self.telemetry_name),
                  {"records_path": self.records_path}, restart=False)
        self._spawn(self.procs["harness"])
        harness_pid = self.procs["harness"].proc.pid
        standby.add(self)  # warm standby harnesses following the session file (livestack/node/standby.py)
        if "writer" in self.procs:
            self.procs["writer"].args[3]["harness_pid"] = harness_pid
        launch.add_venues(self, harness_pid)
        launch.add_feeds(self)
        if cfg["control"]["enabled"]:
            self._start_control()
        if cfg["telemetry"]["metrics_port"] and self.telemetry_name:
            from livestack.telemetry import exporter

            self._add("monitor", exporter.run_process, cpu["monitor"],
                      (self.telemetry_name, {"port": cfg["telemetry"]["metrics_port"]}, self.stop_event))
        for m in self.procs.values():
            if m.proc is None:
                self._spawn(m)
            self._count_restart(m)  # every process has a (zero) restarts series from the start
        self._say(f"session {self.session} started: " + ", ".join(
            f"{m.name} pid {m.proc.pid}" + (f" cpu {m.cpu}" if m.cpu >= 0 else "") for m in self.procs.values()))
        if not self.quiet:
            for line in self.where():
                self._line(f"  {line}")
        self._register()

    def _load_venue_filters(self) -> None:
        """Issue 15: a Binance venue's exchangeInfo filters into the instruments and [risk.symbols]
        of the config every process gets and the session file keeps (replay denies the same)."""
        from livestack.venues.binance.exchange_info import load_filters_into_config

        try:
            self.cfg = load_filters_into_config(self.cfg)
        except ValueError as e:
            raise StartRefused(str(e)) from None
        self.instruments = cfgmod.instruments(self.cfg)

    def _register(self) -> None:
        """This stack's entry in the host's registry (``livestack ls``; ctl/top/metrics find it there)."""
        from livestack.node import registry

        cfg = self.cfg
        ep = getattr(self, "control_endpoint", None)
        pub = cfg["control"]["pub_endpoint"] or (
            (ep[:-5] if ep.endswith(".sock") else ep) + ".events.sock" if ep and ep.startswith("ipc://") else None)
        try:
            registry.register({
                "session": self.session, "name": cfg["session"]["name"], "supervisor_pid": os.getpid(),
                "started_at": self.started_at, "pids": {m.name: m.proc.pid for m in self.procs.values() if m.proc},
                "control": ep, "events": pub, "metrics_port": cfg["telemetry"]["metrics_port"],
                "records": os.path.abspath(self.records_path) if cfg["writer"]["enabled"] else None,
                "telemetry": self.telemetry_name, "cpu": dict(cfg["cpu"]), "log": os.path.abspath(self.log_path),
                "feed": cfg["feed"]["kind"], "venue": cfg["venue"]["kind"], "strategy": cfg["strategy"]["name"],
                **markets.summary(cfg),  # every feed and venue by name, with its kind and instruments
                "instruments": [i.symbol for i in self.instruments]})
            self._registered = True
        except OSError as e:
            self._say(f"warning: not listed in the stacks registry ({e}); ctl/top need --endpoint/--telemetry")

    def where(self) -> list[str]:
        """Where things are, printed at start (``livestack run --quiet`` hides it)."""
        cfg = self.cfg
        port = cfg["telemetry"]["metrics_port"]

        def cpus(m):
            a = self._affinity(m)
            return f"CPU {a}" if isinstance(a, int) and a >= 0 else (
                "CPUs " + ",".join(map(str, a)) if a and a != -1 else "any CPU")

        return [
            f"session   {cfg['session']['name']} (id {self.session})",
            f"records   {os.path.abspath(self.records_path)}" if cfg["writer"]["enabled"] else "records   off (writer.enabled = false)",
            f"control   {getattr(self, 'control_endpoint', None) or 'off (control.enabled = false)'}",
            f"log       {os.path.abspath(self.log_path)}",
            f"metrics   http://127.0.0.1:{port}/metrics" if port else "metrics   off (telemetry.metrics_port = 0)",
            "processes " + "; ".join(f"{m.name} pid {m.proc.pid} {cpus(m)}" for m in self.procs.values()),
            f"{launch.describe(cfg)}   strategy {cfg['strategy']['name']}   "
            "instruments " + ", ".join(i.symbol for i in self.instruments),
        ]

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

    def _open_metrics(self) -> None:
        """The supervisor's metrics block: livestack_info and process restarts (obs, issue 17)."""
        from livestack.telemetry import procmetrics

        self.metrics = None
        try:
            self.metrics = procmetrics.supervisor_block(self.session, self.cfg)
        except Exception as e:  # noqa: BLE001 - the session runs without these metrics
            self._say(f"no supervisor metrics block: {e}")

    def _count_restart(self, m) -> None:
        if getattr(self, "metrics", None) is not None:
            self.metrics.counter("livestack_process_restarts_total", "times the supervisor restarted the process",
                                 {"process": m.name}).set(m.restarts)
            self.metrics.heartbeat()

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
        opts["markets"] = markets.summary(self.cfg)  # ctl status: each feed's health, each venue's orders
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
        harness_pid = h.proc.pid if h is not None and h.proc is not None and h.proc.is_alive() else 0
        if m.report is not None:
            m.report.close()
        m.report, send = self.ctx.Pipe(duplex=False)
        m.why = ""
        m.proc = self.ctx.Process(target=_child, args=(m.target, self._affinity(m), m.args, m.kwargs, os.getpid(),
                                                       m.name, self.session, harness_pid, send),
                                  name=f"livestack-{m.name}")
        m.proc.start()
        send.close()
        m.started = time.monotonic()
        if getattr(self, "_registered", False):  # a restart: the registry shows the new pid
            self._register()
        if m.name == "harness":
            try:
                with open(harness_pid_path(self.session), "w") as f:
                    f.write(str(m.proc.pid))
            except OSError:
                pass

    def _reason(self, m: Managed) -> str:
        """How ``m`` ended, with what it reported."""
        try:
            while m.report is not None and m.report.poll():
                m.why = m.report.recv()
        except (EOFError, OSError):
            pass
        code = m.proc.exitcode
        m.why = m.why or getattr(m.proc, "why", "")  # an adopted process's own reason (node/standby.py)
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exited with code {code}"
        return f"{how}: {m.why}" if m.why else how

    def _fail(self, why: str) -> bool:
        self.failure = why
        self.end_code = EXIT_FAILED
        self._say(f"fatal: {why}; stopping session")
        return False

    # ------------------------------------------------------------------------------------------
    def poll(self) -> bool:
        """One health check; returns False when the session must end (harness gone)."""
        now = time.monotonic()
        if now >= getattr(self, "_next_metrics", 0.0) and not self.stopping:
            launch.publish_metrics(self)  # each feed and venue by name in /metrics
            self._next_metrics = now + 0.5
        for m in self.procs.values():
            if m.proc.is_alive() or self.stopping:
                continue
            if m.name == "harness":
                if m.proc.exitcode == 0:
                    self._say("harness exited (code 0); stopping session")
                    return False
                refused = m.proc.exitcode == EXIT_CHILD_FATAL  # its CPU was taken after our check
                # a harness that fails by itself (not killed by a signal) right after each start is
                # in a crash loop: stop the session rather than restart it forever
                if m.proc.exitcode > 0 and now - m.started < QUICK_FAIL_S:
                    m.quick_fails += 1
                elif m.proc.exitcode < 0:
                    m.quick_fails = 0
                if (self.harness_restart and not refused and m.quick_fails < MAX_QUICK_FAILS
                        and self.harness_restarts < self._recovery.max_restarts):
                    why = self._reason(m)
                    took = standby.promote(self, m)   # None: a warm standby is still starting
                    if took is None:
                        continue
                    self.harness_restarts += 1
                    if took:
                        self._say(f"harness {why}; the warm standby took over (pid {m.proc.pid}, restart "
                                  f"#{self.harness_restarts}): journal tail, RECOVERING; {standby.successor_text(self)}")
                        continue
                    self._spawn(m)
                    self._say(f"harness {why}; restarted (pid {m.proc.pid}, restart #{self.harness_restarts}): "
                              "rebuilding from the journal, RECOVERING")
                    continue
                self._fail(f"harness {self._reason(m)}" + ("" if refused else " (venues cancel on disconnect)"))
                if refused:
                    self.end_code = EXIT_REFUSED
                return False
            if m.proc.exitcode == EXIT_CHILD_FATAL:
                return self._fail(f"{m.name} {self._reason(m)}")
            if m.name == "writer" and m.proc.exitcode == EXIT_DISK_FULL:
                if m.restart:
                    m.restart = False
                    self._say("writer stopped: the records disk is full (trading halted); not restarting it")
                continue
            if not m.restart:
                continue
            if m.next_restart == 0.0:
                if m.proc.exitcode != 0 and now - m.started < QUICK_FAIL_S:
                    m.quick_fails += 1
                    if m.quick_fails >= MAX_QUICK_FAILS:
                        return self._fail(f"{m.name} failed {m.quick_fails} times in a row, each within "
                                          f"{QUICK_FAIL_S:g}s of its start; last {self._reason(m)}")
                else:
                    m.quick_fails = 0
                # backoff by the crash loop only: a process that ran QUICK_FAIL_S or more before it
                # died restarts after RESTART_DELAY_S (the count of all its restarts never resets,
                # and a writer killed for the 9th time in a long session waited 10 s, the harness
                # with it); each failure of a crash loop doubles the wait
                delay = min(RESTART_DELAY_S * 2 ** m.quick_fails, 10.0)
                m.next_restart = now + delay
                self._say(f"{m.name} {self._reason(m)}; restarting in {delay:.1f}s")
            elif now >= m.next_restart:
                m.restarts += 1
                m.next_restart = 0.0
                if launch.role(m.name) == "venue" and not self.harness_restart:  # current harness pid: cancel-on-disconnect
                    m.args[3]["harness_pid"] = self.procs["harness"].proc.pid
                self._spawn(m)
                self._count_restart(m)
                self._say(f"{m.name} restarted (pid {m.proc.pid}, restart #{m.restarts})")
        return True

    def status(self) -> dict:
        """Counters for the status line, from ring positions (and the telemetry block when present)."""
        r = {}
        records = self._owned(self.rings["records"])
        venues = self.rings["venues"]
        r["md"] = sum(self._owned(n).head for n in self.rings["md"])  # every feed, every venue
        r["orders"] = sum(self._owned(v["orders"]).tail for v in venues)
        r["exec"] = sum(self._owned(v["exec"]).head for v in venues)
        if len(self.rings["md"]) > 1 or len(venues) > 1:
            r["feeds"] = {f["name"]: self._owned(n).head for f, n in zip(self.cfg["feeds"], self.rings["md"])}
            r["venues"] = {v["name"]: {"orders": self._owned(v["orders"]).tail, "exec": self._owned(v["exec"]).head}
                           for v in venues}
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
        """Block until Ctrl-C, SIGTERM, SIGHUP, a closed stdout, the configured duration, the harness
        ending or a fatal failure; stop in order; return the exit code (``EXIT_*``)."""
        interrupted = []
        signal.signal(signal.SIGTERM, lambda *_: interrupted.append(EXIT_OK))
        signal.signal(signal.SIGHUP, lambda *_: interrupted.append(EXIT_HANGUP))
        duration = self.cfg["session"]["duration_s"]
        every = self.cfg["session"]["status_interval_s"]
        next_status = time.monotonic() + every if every > 0 else float("inf")
        end = time.monotonic() + duration if duration > 0 else float("inf")
        try:
            while not interrupted and time.monotonic() < end:
                if not self.poll():
                    break
                if time.monotonic() >= next_status:
                    self._line(self.status_line())
                    next_status += every
                if self.out.reader_gone():
                    interrupted.append(EXIT_PIPE)
                    break
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        if interrupted and self.end_code == EXIT_OK:
            self.end_code = interrupted[0]
        rc = self.stop()
        return self.end_code if self.end_code != EXIT_OK else (EXIT_FAILED if rc else EXIT_OK)

    def stop(self, timeout: float = 30.0) -> int:
        """Orderly shutdown; returns 0 when every process ended by itself."""
        if self.stopping:
            return 0
        self.stopping = True
        rc = 0
        standby.stop(self)
        h = self.procs.get("harness")
        if h and h.proc.is_alive():
            os.kill(h.proc.pid, signal.SIGTERM)
            h.proc.join(timeout=timeout)
        self.stop_event.set()
        order = ["feed", "venue", "control", "monitor", "writer"]
        for m in sorted(self.procs.values(), key=lambda m: order.index(launch.role(m.name))
                        if launch.role(m.name) in order else len(order)):
            if m.name != "harness" and m.proc.is_alive():
                m.proc.join(timeout=timeout)
        for m in self.procs.values():
            if m.proc.is_alive():
                self._say(f"{m.name} did not stop within {timeout}s; killing it")
                m.proc.kill()
                m.proc.join(timeout=5)
                rc = 1
        from livestack.strategies import config as strategy_config  # sdk: the first strategy traceback

        strategy_config.attach_errors(self.records_path, self.cfg["session"]["records_dir"],
                                      getattr(self, "telemetry_name", None))
        if self.started_at:
            self._say(f"session {self.session} stopped; records in {self.records_path}")
        if getattr(self, "metrics", None) is not None:
            self.metrics.close()
            self.metrics = None
        if getattr(self, "telemetry", None) is not None:
            try:
                self.telemetry.close()
            except Exception:  # noqa: BLE001
                pass
        for ring in self.owned:
            ring.close()
        if getattr(self, "_registered", False):
            from livestack.node import registry

            registry.unregister(self.session)
        shm.remove_session(self.session)
        if getattr(self, "_alive_fd", None) is not None:
            os.close(self._alive_fd)
            self._alive_fd = None
        return rc
