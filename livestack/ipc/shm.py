"""POSIX shared-memory segments: naming, create/attach, and removal of a crashed session's leftovers.

Every segment of a session is named ``/ls.<session>.<name>`` where ``<session>`` is
``<supervisor pid>-<token>``. A segment whose session pid is no longer alive is a leftover of a
crashed run and :func:`remove_stale` deletes it.
"""

from __future__ import annotations

import mmap
import os
import re
import secrets

import posix_ipc

PREFIX = "ls."
SHM_DIR = "/dev/shm"
_SESSION_RE = re.compile(r"^ls\.(\d+)-([0-9a-z]+)\.")


class SegmentMissing(FileNotFoundError):
    pass


def new_session_id(pid: int | None = None) -> str:
    """A fresh session id: the owning process's pid and a random token."""
    return f"{pid or os.getpid()}-{secrets.token_hex(3)}"


def segment_name(session: str, name: str) -> str:
    """``/ls.<session>.<name>``: the shm name of segment ``name`` of ``session``."""
    if "/" in name or "/" in session:
        raise ValueError(f"segment name parts may not contain '/': {session!r} {name!r}")
    full = f"/{PREFIX}{session}.{name}"
    if len(full) > 250:
        raise ValueError(f"segment name too long: {full}")
    return full


def create_segment(name: str, size: int):
    """Create a new zero-filled segment of ``size`` bytes; returns (SharedMemory, mmap)."""
    try:
        seg = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=size)
    except posix_ipc.ExistentialError as e:
        raise FileExistsError(f"shared-memory segment {name} already exists") from e
    try:
        mm = mmap.mmap(seg.fd, size)
    finally:
        seg.close_fd()
    return seg, mm


def attach_segment(name: str):
    """Map an existing segment; raises SegmentMissing naming it if it does not exist."""
    try:
        seg = posix_ipc.SharedMemory(name)
    except posix_ipc.ExistentialError as e:
        raise SegmentMissing(f"shared-memory segment {name} does not exist") from e
    try:
        mm = mmap.mmap(seg.fd, seg.size)
    finally:
        seg.close_fd()
    return seg, mm


def unlink_segment(name: str) -> bool:
    """Remove a segment name; False if it was already gone."""
    try:
        posix_ipc.unlink_shared_memory(name)
        return True
    except posix_ipc.ExistentialError:
        return False


def list_segments(session: str | None = None) -> list[str]:
    """Names (with leading '/') of livestack segments, optionally only one session's."""
    prefix = PREFIX + (f"{session}." if session else "")
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return []
    return sorted("/" + e for e in entries if e.startswith(prefix))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Unlink every livestack segment whose session process is dead; returns what was removed."""
    removed = []
    for name in list_segments():
        m = _SESSION_RE.match(name[1:])
        if m and not _pid_alive(int(m.group(1))):
            if unlink_segment(name):
                removed.append(name)
    return removed


def remove_session(session: str) -> list[str]:
    """Unlink every segment of ``session``; returns what was removed."""
    return [n for n in list_segments(session) if unlink_segment(n)]
