"""The stacks running on this host: one JSON file per running ``livestack run`` (issue 17.7).

``livestack ls`` lists them; ``ctl``, ``top`` and ``metrics`` find a stack through :func:`find`
(``--stack SESSION|NAME``; none given: the only running stack, else the newest).

Where: ``$LIVESTACK_STACKS_DIR``, else ``livestack-stacks-<uid>`` beside the per-CPU harness locks
(``$LIVESTACK_CPU_LOCK_DIR``, default ``/dev/shm``), so a test run that isolates its CPU locks
isolates its registry too. An entry is live while its supervisor process lives (pid and kernel
start time match: a reused pid is not mistaken for it) and its session's liveness file exists;
a stale entry (the supervisor was SIGKILLed) is removed by the next look.
"""

from __future__ import annotations

import json
import os
import time

from livestack.ipc import shm


def registry_dir() -> str:
    env = os.environ.get("LIVESTACK_STACKS_DIR")
    if env:
        return env
    base = os.environ.get("LIVESTACK_CPU_LOCK_DIR", "/dev/shm")
    return os.path.join(base, f"livestack-stacks-{os.getuid()}")


def _path(session: str) -> str:
    return os.path.join(registry_dir(), f"{session}.json")


def proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (index 0: the state, 1: the
    parent's pid, 19: the start time, 49: the exit status of a zombie); None when unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:].decode("ascii", "replace").split()
    except (OSError, ValueError):
        return None


def proc_start_ticks(pid: int) -> int:
    """The kernel start time of ``pid`` (clock ticks since boot; 0 when unknown)."""
    fields = proc_stat(pid)
    try:
        return int(fields[19]) if fields else 0
    except (ValueError, IndexError):
        return 0


def register(info: dict) -> str:
    """Write (or rewrite) this stack's entry; ``info`` needs ``session`` and ``supervisor_pid``."""
    d = registry_dir()
    os.makedirs(d, mode=0o700, exist_ok=True)
    entry = dict(info, supervisor_start=proc_start_ticks(info["supervisor_pid"]), updated=time.time())
    path = _path(info["session"])
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(entry, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return path


def unregister(session: str) -> None:
    try:
        os.unlink(_path(session))
    except FileNotFoundError:
        pass


def alive(entry: dict) -> bool:
    pid = int(entry.get("supervisor_pid", 0))
    if not shm.pid_alive(pid):
        return False
    start = entry.get("supervisor_start") or 0
    if start and proc_start_ticks(pid) not in (0, start):
        return False  # the pid was reused by another process
    from livestack.node.supervisor import alive_path

    return os.path.exists(alive_path(entry["session"]))


def stacks(clean: bool = True) -> list[dict]:
    """The live stacks, newest first (stale entries removed when ``clean``)."""
    d = registry_dir()
    try:
        names = [n for n in os.listdir(d) if n.endswith(".json")]
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        p = os.path.join(d, n)
        try:
            with open(p) as f:
                entry = json.load(f)
        except (OSError, ValueError):
            continue
        if alive(entry):
            out.append(entry)
        elif clean:
            try:
                os.unlink(p)
            except OSError:
                pass
    out.sort(key=lambda e: e.get("started_at", 0), reverse=True)
    return out


def find(selector: str | None = None) -> dict:
    """The stack ``selector`` names (session id or session name; a unique prefix of either), or
    with no selector the only running stack (several: the newest). LookupError when none matches,
    naming the running ones."""
    running = stacks()
    if not running:
        raise LookupError("no livestack stack is running on this host (livestack ls; registry "
                          f"{registry_dir()})")
    if selector is None:
        return running[0]
    exact = [e for e in running if selector in (e["session"], e.get("name"))]
    prefix = [e for e in running if e["session"].startswith(selector) or str(e.get("name", "")).startswith(selector)]
    hits = exact or prefix
    if len(hits) == 1 or (exact and hits):
        return hits[0]
    names = ", ".join(f"{e['session']} ({e.get('name')})" for e in running)
    if not hits:
        raise LookupError(f"no running stack named {selector!r}; running: {names}")
    raise LookupError(f"{selector!r} matches several stacks: {names}; give the session id")
