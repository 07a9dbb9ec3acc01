"""The supervisor's side of the warm standby harnesses (``livestack.harness.standby``, issue 14).

    start:   [recovery] standby = N  ──▶ N standby processes ("standby", "standby2" ...) on the
             non-harness CPUs, restarted like any process when they die
    harness died (not exit 0): promote() ──▶ a ready standby (a warm one first): SIGUSR1, its
             process becomes the "harness" entry, a new standby is spawned in its place
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
        sup._spawn(s)
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
