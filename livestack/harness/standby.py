"""A warm standby harness (issue 14): follows the session file while the harness runs and becomes
the harness when it dies, so recovery time does not grow with the session's length.

::

    supervisor ──spawn──▶ standby (any CPU but the harness's, sleeps between passes, never spins)
                            build the core and strategy as the harness does (process.build_core)
                            every standby_poll_s: JournalFollower.catch_up()  new journal entries
                                                   ──▶ core.run_count      (HDF5 SWMR read, no lock)
    harness dies (not exit 0) ──▶ supervisor: SIGUSR1 to a ready standby, it is "harness" now,
                                  its forked successor (else a newly spawned one) the standby
    standby on SIGUSR1: fork its successor ([recovery] standby_fork): the child has this core as
                        it is, so it is a warm standby at once (the supervisor adopts it by its
                        ready file); then take the harness CPU's lock, pin,
                        harness.process.run_process(follower=...)
                        ──▶ wait for the writer, run the journal's tail, attach the rings,
                            RECOVER ──▶ RECOVERING ──▶ status of every open order ──▶ ACTIVE

Why a follower process and not a snapshot of the core: a strategy may be user Python holding
state no snapshot can capture; a core fed the same journal is the same core (the replay
guarantee), strategy included.

Ready: the standby writes its pid to ``/dev/shm/ls.<session>.standby.<pid>`` once its SIGUSR1
handler is in place, and appends " warm" once it ran the journal as it was at its start; the
supervisor promotes only a standby whose file exists (a signal to a process still importing
would kill it), warm or not (a standby halfway through is still ahead of a fresh harness). The file goes with the session's shared memory.

The forked successor: a fork copies only the thread that forks, so a standby whose strategy
started threads of its own does not fork (it logs why; the supervisor spawns a successor, which
re-runs the journal). Between journal passes the standby holds no file open (each pass opens
the session file), so the child inherits no HDF5 state. It is not the supervisor's child: the
supervisor watches it by pidfd and reads its exit status from ``exit_path`` (or, SIGKILLed,
from the kernel while it is a zombie of its parent); it watches the supervisor by pidfd and
stops, as any child, when the supervisor dies.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import time

log = logging.getLogger(__name__)


def ready_path(session: str, pid: int) -> str:
    from livestack.ipc import shm

    return os.path.join(shm.SHM_DIR, f"{shm.PREFIX}{session}.standby.{pid}")


def is_ready(session: str, pid: int) -> bool:
    """The standby can take a promotion (its SIGUSR1 handler is in place)."""
    return os.path.exists(ready_path(session, pid))


def is_warm(session: str, pid: int) -> bool:
    """The standby has run the journal as it was when it started (only the new entries are left)."""
    try:
        with open(ready_path(session, pid)) as f:
            return f.read().endswith("warm")
    except OSError:
        return False


def run_process(rings: dict, cfg: dict, telemetry_name: str | None = None, records_path: str | None = None,
                session: str = "", stop=None) -> None:
    """Entry point of a standby process (spawned by the supervisor, ``livestack.node.standby``):
    follow the journal until promoted (SIGUSR1), then run as the harness; return on SIGTERM,
    ``stop`` or the end of the session before that."""
    sig = _Signals()  # first: a SIGTERM while the core is being built must end this process cleanly
    from livestack.harness import process, recovery

    opts = recovery.parse(cfg.get("recovery"))
    _SUPERVISOR[:] = [os.getppid()]  # spawned by the supervisor; a forked successor keeps this
    t0 = time.monotonic()
    follower = recovery.JournalFollower(process.build_core(cfg), records_path)
    if sig.term or _follow(sig, follower, session, opts, stop, t0) != "promoted":
        return
    if opts.standby_fork:
        _fork_successor(rings, cfg, telemetry_name, records_path, session, stop, follower, opts)
    take_over(rings, cfg, telemetry_name, records_path, session, follower)


#: the supervisor's pid (a forked standby is not its child: it watches this pid instead)
_SUPERVISOR: list = []


class _Signals:
    """SIGUSR1 (promoted) and SIGTERM (stop) noted in lists, and a pipe that wakes a select."""

    def __init__(self):
        self.promoted, self.term = [], []
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)  # a signal to any thread wakes the select at once
        signal.signal(signal.SIGUSR1, lambda *_: self.promoted.append(1))
        signal.signal(signal.SIGTERM, lambda *_: self.term.append(1))

    def close(self):
        signal.set_wakeup_fd(-1)
        os.close(self.wake_r)
        os.close(self.wake_w)


def _follow(sig: _Signals, follower, session: str, opts, stop, t0: float, warm: bool = False) -> str:
    """Follow the journal until promoted (SIGUSR1: "promoted"), SIGTERM ("term") or ``stop``
    ("stop"). The ready file exists while this runs; ``warm``: the follower has already run the
    journal (a forked successor), say so at once."""
    promoted, term, wake_r = sig.promoted, sig.term, sig.wake_r
    mark = ready_path(session, os.getpid())
    with open(mark, "w") as f:
        f.write(str(os.getpid()) + (" warm" if warm else ""))
    try:
        while not warm and not follower.catch_up(lambda: bool(promoted or term)) and not (promoted or term):
            time.sleep(opts.standby_poll_s)  # the file is not readable yet: the writer is starting
        if not warm and not (promoted or term):
            follower.warm = True  # a forked successor inherits this: it is warm only if this was
            with open(mark, "a") as f:
                f.write(" warm")
            log.info("standby: core at %s journaled inputs after %.3f s", f"{follower.applied:,}", time.monotonic() - t0)
        while not promoted and not term and not (stop is not None and stop.is_set()):
            select.select([wake_r], [], [], opts.standby_poll_s)
            if promoted or term:
                break
            follower.catch_up(lambda: bool(promoted or term))
            while select.select([wake_r], [], [], 0)[0]:
                os.read(wake_r, 512)
    finally:
        try:
            os.unlink(mark)
        except FileNotFoundError:
            pass
        sig.close()
    if promoted and not term:
        # until the harness loop installs its own handler, a SIGTERM (the session stopping) ends
        # the process at once: nothing is running yet that would need draining
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return "promoted"
    return "term" if term else "stop"


def exit_path(session: str, pid: int) -> str:
    """Where a forked standby leaves its exit status ("code reason"): the supervisor cannot wait
    for a process that is not its child (``livestack.node.standby.Adopted``)."""
    from livestack.ipc import shm

    return os.path.join(shm.SHM_DIR, f"{shm.PREFIX}{session}.exit.{pid}")


def _fork_successor(rings, cfg, telemetry_name, records_path, session, stop, follower, opts) -> None:
    """Promoted: fork the next standby before taking over. The child has this core as it is,
    so it is warm at once, where a freshly spawned standby would re-run the whole journal
    (seconds by the end of a long session, and a second kill before it is done finds no warm
    standby). It writes its ready file; the supervisor adopts it by that file
    (``livestack.node.standby.promote``). Safe here: between journal passes no file is open, and
    the only other thread (the orphan watch) holds no lock the child needs. The child never
    returns into this stack: it exits through ``os._exit`` with its status in ``exit_path``."""
    import threading

    from livestack.node import supervisor

    own = [t.name for t in threading.enumerate()
           if t is not threading.main_thread() and t.name != "livestack-orphan-watch"]
    if own:
        log.warning("standby: not forking a successor: a fork would drop the strategy's threads %s; "
                    "the supervisor spawns one", own)
        return
    try:
        pid = os.fork()
    except OSError as e:
        log.warning("standby: cannot fork a successor (%s); the supervisor spawns one", e)
        return
    if pid:
        return
    code, why = 0, ""
    try:
        sig = _Signals()  # first: the inherited handlers note into the parent's (copied) lists
        parent = _SUPERVISOR[0] if _SUPERVISOR else 0
        supervisor._watch_parent("standby", parent, 0, cfg["cpu"]["harness"], session,
                                 parent_fd=supervisor._pidfd(parent))
        if sig.term:
            return
        if _follow(sig, follower, session, opts, stop, time.monotonic(),
                   warm=follower.warm) == "promoted":
            _fork_successor(rings, cfg, telemetry_name, records_path, session, stop, follower, opts)
            take_over(rings, cfg, telemetry_name, records_path, session, follower)
    except BaseException as e:  # noqa: BLE001 -- classified like any child's (supervisor._child)
        if not isinstance(e, (KeyboardInterrupt, SystemExit)):
            code, why = supervisor.exit_for(e)
            log.error("standby (forked): %s", why)
            if os.environ.get("LIVESTACK_TRACEBACK"):
                import traceback

                traceback.print_exc()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            with open(exit_path(session, os.getpid()), "w") as f:
                f.write(f"{code} {why}")
        except OSError:
            pass
        try:
            if supervisor._ORPHANED:
                supervisor.last_one_out(session, supervisor._ALIVE[0] if supervisor._ALIVE else None)
        finally:
            import sys

            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)



def take_over(rings: dict, cfg: dict, telemetry_name, records_path: str, session: str, follower) -> None:
    """Become the harness: the harness CPU's lock (freed by the kernel when the dead harness's
    files closed; bounded wait), then the harness process's own path with this warm core."""
    from livestack.harness import process
    from livestack.node import supervisor

    cpu = cfg["cpu"]["harness"]
    if cpu >= 0:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                supervisor._CPU_LOCKS.append(supervisor.take_cpu_lock(cpu, session))
                break
            except supervisor.StartRefused:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.002)
    log.warning("standby: taking over as the harness at %s journaled inputs", f"{follower.applied:,}")
    process.run_process(rings, cfg, telemetry_name, records_path, follower=follower)
