"""POSIX shared-memory segments, written once: naming, create/attach/close/unlink, stale removal,
and exclusive roles.

Every segment of a session is named ``/ls.<session>.<name>`` where ``<session>`` is
``<supervisor pid>-<token>``. A segment whose session pid is no longer alive is a leftover of a
crashed run and :func:`remove_stale` deletes it. Segments are created 0600: the trust boundary is
the uid (run the stack as its own user; see README "Trust boundary").

:class:`Segment` is the one lifecycle both the rings (``ring.pyx``, ``pyring.py``) and the
telemetry block (``telemetry/block.pyx``) use: create zero-filled, attach (waiting for the creator
to initialise it), close, unlink. A segment keeps its file descriptor open while mapped, so that
it can hold a **role lock**: an open-file-description byte-range lock (``F_OFD_SETLK``) on one byte
of the segment itself, one byte per role (a ring's producer is byte 0, its consumer byte 1)::

    /dev/shm/ls.<session>.orders.sim    byte 0: producer lock   byte 1: consumer lock
                                        (advisory; the bytes' contents are the ring header)

Why this lock: it lives and dies with the segment (a new session's segment is a new inode with no
locks), it needs no lock files or directories, it conflicts between two handles even in one
process (unlike classic POSIX ``F_SETLK`` locks, which are per process and dropped by any close),
and the kernel releases it when the holder's descriptor closes -- at process exit, SIGKILL
included -- so a restarted process takes the role again. The kernel does not report the holder's
pid for these locks, so the caller keeps it in the segment (a ring's header) for error messages.
Caveat: a child ``fork``-ed (without exec) by a holder shares the descriptor and keeps the lock;
livestack starts processes with ``spawn``.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import re
import secrets
import struct
import time

import posix_ipc

PREFIX = "ls."
SHM_DIR = "/dev/shm"
_SESSION_RE = re.compile(r"^ls\.(\d+)-([0-9a-z]+)\.")
_FLOCK = "hhqqi4x"  # struct flock on x86-64/aarch64 Linux: l_type, l_whence, l_start, l_len, l_pid


class SegmentMissing(FileNotFoundError):
    """The segment does not exist (or was never initialised within the wait)."""


class RoleTaken(RuntimeError):
    """Another handle (in this or another process) holds the exclusive role asked for."""


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


def pid_alive(pid: int) -> bool:
    """``os.kill(pid, 0)`` liveness: False only when no such process exists (a zombie, or another
    user's process we may not signal, counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Segment:
    """One mapped POSIX shared-memory segment and its open descriptor.

    ``mm`` is the writable mapping. The descriptor stays open until :meth:`close` so that the
    handle can hold role locks (:meth:`take_role`); closing it releases them.
    """

    __slots__ = ("name", "mm", "fd", "owner", "__weakref__")

    def __init__(self, name: str, fd: int, mm: mmap.mmap, owner: bool):
        self.name, self.fd, self.mm, self.owner = name, fd, mm, owner

    @classmethod
    def create(cls, name: str, size: int) -> "Segment":
        """Create a new zero-filled segment of ``size`` bytes, mode 0600; FileExistsError if it exists."""
        try:
            seg = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=size)
        except posix_ipc.ExistentialError as e:
            raise FileExistsError(f"shared-memory segment {name} already exists") from e
        try:
            mm = _map(seg.fd, size)
        except BaseException:
            seg.close_fd()
            unlink_segment(name)
            raise
        try:
            fd = _lock_fd(seg, name)
        except BaseException:
            mm.close()
            unlink_segment(name)
            raise
        return cls(name, fd, mm, True)

    @classmethod
    def attach(cls, name: str, timeout: float = 0.0, ready=None) -> "Segment":
        """Map an existing segment.

        With ``timeout`` > 0 waits that long for it to exist and for ``ready(mm)`` (when given: the
        creator has finished initialising it) to be true. Raises :class:`SegmentMissing` naming
        the segment when it does not exist or never became ready.
        """
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while True:
            seg = _open(name)
            if seg is not None:
                if ready is None or ready(seg.mm):
                    return seg
                seg.close()
                why = "is not initialised"
            else:
                why = "does not exist"
            if time.monotonic() >= deadline:
                raise SegmentMissing(f"shared-memory segment {name} {why}"
                                     + (f" after {timeout:g} s" if timeout > 0 else ""))
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    @property
    def closed(self) -> bool:
        return self.mm is None

    # --- role locks ----------------------------------------------------------------------
    def take_role(self, byte: int) -> bool:
        """Take the exclusive lock on byte ``byte`` of the segment; False when another open
        handle holds it. Held until :meth:`release_role` or :meth:`close` (or process death)."""
        self._need_open()
        try:
            fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, byte, 1, 0))
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def release_role(self, byte: int) -> None:
        self._need_open()
        fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, fcntl.F_UNLCK, os.SEEK_SET, byte, 1, 0))

    def role_free(self, byte: int) -> bool:
        """Whether no other open handle holds the lock on ``byte`` (a snapshot, for reports)."""
        self._need_open()
        got = fcntl.fcntl(self.fd, fcntl.F_OFD_GETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, byte, 1, 0))
        return struct.unpack(_FLOCK, got)[0] == fcntl.F_UNLCK

    def _need_open(self):
        if self.fd < 0:
            raise ValueError(f"shared-memory segment {self.name}: closed")

    # --- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        """Unmap and close the descriptor (releasing role locks). Numpy views still referencing
        the mapping keep it mapped until they go."""
        if self.mm is not None:
            try:
                self.mm.close()
            except BufferError:
                pass  # views still reference the mapping; it goes when they do
            self.mm = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def unlink(self) -> bool:
        """Remove the segment's name (mappings stay valid); False if it was already gone."""
        return unlink_segment(self.name)

    def __del__(self):
        if getattr(self, "fd", -1) >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass

    def __repr__(self):
        return f"<Segment {self.name}{' closed' if self.closed else ''}>"


#: every page mapped at map time (Linux): the creator allocates the segment's pages once, and each
#: process that maps it gets its page tables then, not through a fault per 4 KiB page on first
#: touch -- which, in a fresh records ring, is the harness's first write into every page
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


def _map(fd: int, size: int) -> mmap.mmap:
    return mmap.mmap(fd, size, flags=mmap.MAP_SHARED | _POPULATE)


def _lock_fd(seg, name: str) -> int:
    """A descriptor for role locks on the segment ``seg`` has open, then close ``seg``'s.

    It must be a separate open file description from the one the mapping was made from: CPython's
    mmap keeps a dup of that descriptor while the mapping lives (numpy views can keep it alive
    after close), and an OFD lock lives as long as any descriptor of its description. So the lock
    descriptor comes from a second ``shm_open`` of the name, checked to be the same segment (the
    name could have been unlinked and re-created in between).
    """
    try:
        again = posix_ipc.SharedMemory(name)
    except posix_ipc.ExistentialError:
        seg.close_fd()
        raise SegmentMissing(f"shared-memory segment {name} was removed while attaching") from None
    try:
        if os.fstat(again.fd).st_ino != os.fstat(seg.fd).st_ino:
            raise SegmentMissing(f"shared-memory segment {name} was replaced while attaching")
        return os.dup(again.fd)  # ours: not inheritable
    finally:
        again.close_fd()
        seg.close_fd()


def _open(name: str) -> Segment | None:
    try:
        seg = posix_ipc.SharedMemory(name)
    except posix_ipc.ExistentialError:
        return None
    try:
        mm = _map(seg.fd, seg.size) if seg.size else None
    except BaseException:
        seg.close_fd()
        raise
    if mm is None:  # created but not yet sized: not there yet
        seg.close_fd()
        return None
    try:
        fd = _lock_fd(seg, name)
    except SegmentMissing:
        mm.close()
        return None
    return Segment(name, fd, mm, False)


def create_segment(name: str, size: int):
    """Create a new zero-filled segment; returns ``(Segment, mmap)``."""
    seg = Segment.create(name, size)
    return seg, seg.mm


def attach_segment(name: str, timeout: float = 0.0):
    """Map an existing segment; returns ``(Segment, mmap)``; SegmentMissing naming it if absent."""
    seg = Segment.attach(name, timeout)
    return seg, seg.mm


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


def remove_stale() -> list[str]:
    """Unlink every livestack segment whose session process is dead; returns what was removed."""
    removed = []
    for name in list_segments():
        m = _SESSION_RE.match(name[1:])
        if m and not pid_alive(int(m.group(1))):
            if unlink_segment(name):
                removed.append(name)
    return removed


def remove_session(session: str) -> list[str]:
    """Unlink every segment of ``session``; returns what was removed."""
    return [n for n in list_segments(session) if unlink_segment(n)]
