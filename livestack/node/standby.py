"""The supervisor's side of the warm standby harnesses (``livestack.harness.standby``, issue 14).

    start:   [recovery] standby = N  ──▶ N standby processes ("standby", "standby2" ...) on the
             non-harness CPUs, restarted like any process when they die
    harness died (not exit 0): promote() ──▶ a ready standby (a warm one first): SIGUSR1, its
             process becomes the "harness" entry; in its place the successor it forks (warm at
             once, ``[recovery] standby_fork``, default on) is adopted (``Adopted``: not the
             supervisor's child, watched by pidfd), else a new standby is spawned
             one alive but still starting: wait for it (bounded), it is ahead of a fresh harness
             none: the supervisor spawns a fresh harness, which re-runs the whole journal
    stop:    stop() first, so no standby is left following a session that ends

The hooks in ``supervisor.py`` are one line each (start, poll, stop).
"""

from __future__ import annotations

import os
import signal
import time


def names(sup) -> list[str]:
    return [n for n in sup.procs if n.startswith("standby")]


def add(sup) -> None:
    """Add the configured standbys to ``sup.procs`` (spawned with the other processes)."""
    from livestack.harness import standby

    if not sup.harness_restart:
        return
    for k in range(sup._recovery.standby):
        name = "standby" if k == 0 else f"standby{k + 1}"
        sup._add(name, standby.run_process, -1,  # -1: every CPU but the harness's
                 (sup.rings, sup.cfg, sup.telemetry_name),
                 {"records_path": sup.records_path, "session": sup.session, "stop": sup.stop_event})


#: a killed harness waits this long for a standby that is still starting (imports) before a fresh
#: harness is spawned instead: the standby started earlier, so it is ahead of a fresh one
READY_WAIT_S = 30.0


def promote(sup, harness):
    """Make a ready standby the harness (``harness`` is the dead one's ``Managed``). True when
    one took over (the standby's process moves into ``harness``, its own entry gets a new one);
    None when a standby is alive but not ready yet and the harness was killed by a signal: call
    again at the next poll (bounded by READY_WAIT_S); False: none, spawn a fresh harness."""
    from livestack.harness import standby
    from livestack.node.supervisor import harness_pid_path

    alive = [n for n in names(sup) if sup.procs[n].proc is not None and sup.procs[n].proc.is_alive()]
    alive.sort(key=lambda n: not standby.is_warm(sup.session, sup.procs[n].proc.pid))  # warm ones first
    for name in alive:
        s = sup.procs[name]
        if not standby.is_ready(sup.session, s.proc.pid):
            continue
        try:
            os.kill(s.proc.pid, signal.SIGUSR1)
        except ProcessLookupError:
            continue
        if harness.report is not None:
            harness.report.close()
        harness.proc, harness.report, harness.why = s.proc, s.report, ""
        harness.started = time.monotonic()
        s.proc, s.report = None, None
        try:
            with open(harness_pid_path(sup.session), "w") as f:
                f.write(str(harness.proc.pid))
        except OSError:
            pass
        child = _successor(sup, harness.proc.pid) if sup._recovery.standby_fork else None
        if child is not None:
            s.proc, s.report, s.why, s.started = child, None, "", time.monotonic()
            sup._successor_text = f"its forked successor is the standby ({name} pid {child.pid})"
            if getattr(sup, "_registered", False):  # the registry shows the new pids
                sup._register()
        else:
            sup._spawn(s)
            sup._successor_text = f"a new standby is starting ({name} pid {s.proc.pid})"
        sup._standby_wait_until = None
        return True
    killed = harness.proc.exitcode is not None and harness.proc.exitcode < 0
    if alive and killed:
        until = getattr(sup, "_standby_wait_until", None)
        if until is None:
            sup._standby_wait_until = time.monotonic() + READY_WAIT_S
            return None
        if time.monotonic() < until:
            return None
    sup._standby_wait_until = None
    return False


def successor_text(sup) -> str:
    """What replaced the standby the last ``promote`` made the harness, for the takeover line."""
    return getattr(sup, "_successor_text", "") or "a new standby is starting"


#: how long the supervisor waits for a promoted standby's forked successor to announce itself
#: (its ready file) before it spawns a new standby instead (a fork takes milliseconds)
SUCCESSOR_WAIT_S = 5.0


def _successor(sup, parent: int, wait_s: float | None = None):
    """The standby forked by the just-promoted ``parent`` (its ready file names a live child of
    ``parent``), adopted; None when none announced itself within ``wait_s``. A successor that
    comes later is not managed: it follows until the session's stop flag or the supervisor's
    death, as any standby, and is never promoted."""
    from livestack.ipc import shm

    prefix = f"{shm.PREFIX}{sup.session}.standby."
    deadline = time.monotonic() + (SUCCESSOR_WAIT_S if wait_s is None else wait_s)
    while True:
        try:
            names = [e for e in os.listdir(shm.SHM_DIR) if e.startswith(prefix)]
        except OSError:
            names = []
        for e in names:
            try:
                pid = int(e[len(prefix):])
            except ValueError:
                continue
            if _ppid(pid) == parent:
                try:
                    return Adopted(pid, sup.session)
                except OSError:  # gone already
                    continue
        if time.monotonic() > deadline:
            return None
        time.sleep(0.001)


def _ppid(pid: int) -> int | None:
    from livestack.node.registry import proc_stat

    fields = proc_stat(pid)
    try:
        return int(fields[1]) if fields else None
    except (ValueError, IndexError):
        return None


class Adopted:
    """A process the supervisor did not start (a standby forked by the standby it promoted),
    behind the part of ``multiprocessing.Process`` the supervisor uses. It cannot be waited for:
    its end is seen on a pidfd; its exit status is the one it left in
    ``livestack.harness.standby.exit_path``, else (SIGKILL, or any signal) the kernel's
    ``/proc/<pid>/stat`` exit code while it is a zombie, else "killed by a signal" (-SIGKILL)."""

    def __init__(self, pid: int, session: str):
        self.pid = pid
        self.session = session
        self.fd = os.pidfd_open(pid)
        self.why = ""
        self._code = None

    def is_alive(self) -> bool:
        import select

        return not select.select([self.fd], [], [], 0)[0]

    def join(self, timeout: float | None = None) -> None:
        import select

        select.select([self.fd], [], [], timeout)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig) -> None:
        try:
            signal.pidfd_send_signal(self.fd, sig)
        except ProcessLookupError:
            pass

    @property
    def exitcode(self) -> int | None:
        if self._code is not None:
            return self._code
        if self.is_alive():
            return None
        from livestack.harness.standby import exit_path

        try:
            with open(exit_path(self.session, self.pid)) as f:
                code, _, why = f.read().partition(" ")
            self._code, self.why = int(code), why
            os.unlink(exit_path(self.session, self.pid))
            return self._code
        except (OSError, ValueError):
            pass
        from livestack.node.registry import proc_stat

        self._code = -signal.SIGKILL
        fields = proc_stat(self.pid)
        try:
            status = int(fields[49]) if fields and fields[0] == "Z" else 0  # a zombie of its (live) parent
        except (ValueError, IndexError):
            status = 0
        if status:  # the kernel's status (0 also when it may not be shown: a clean exit leaves a file)
            self._code = -(status & 0x7F) if status & 0x7F else (status >> 8) & 0xFF
        else:
            self.why = "ended without its status file: killed by a signal (which one is not known)"
        return self._code

    def close(self) -> None:
        os.close(self.fd)


def stop(sup, timeout: float = 10.0) -> None:
    """SIGTERM every standby and wait for it (before the harness is asked to stop)."""
    for name in names(sup):
        p = sup.procs[name].proc
        if p is not None and p.is_alive():
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for name in names(sup):
        p = sup.procs[name].proc
        if p is not None:
            p.join(timeout=timeout)
