"""Free space on the records filesystem: the writer's guard against a full disk (issue 12.6).

A full disk is a defined state, not a crash. HDF5 hit by ENOSPC in the middle of a metadata
flush can leave a file nobody can open (and once crashed the writer outright), so the writer never
lets the disk get there: it checks free space (``statvfs``) before every batch it writes and at
least every ``disk_check_interval_ms``, and moves through four states, each published in the
telemetry block (``writer_disk_state``) for the harness, which reacts at its next pass::

    free space                state      harness (journaled DISK_HALT input)    writer
    ------------------------  ---------  -------------------------------------  --------------------------
    >= min_free_mb            OK         -                                      writes
    <  min_free_mb            LOW (1)    REDUCING, ANOMALY DISK_FULL            writes
    <  min_free_mb / 2        HALT (2)   cancel every resting order, HALTED     writes (the cancels and
                                                                                 their answers land in the file)
    <  min_free_mb / 4, or a  STOPPED    (HALTED if not yet)                    flush, close the file cleanly,
       batch would cross it,  (3)                                               then consume and count the
       or ENOSPC                                                                records (records_lost_disk_full)

At start the writer needs ``min_free_mb`` free (preflight); below it, it starts STOPPED (no file
is created). A STOPPED writer never exits until the session stops, and then exits with
``EXIT_DISK_FULL``, which the supervisor does not restart: no restart loop.

A real ENOSPC can still happen (another process fills the disk between a check and a write),
and HDF5 then cannot even close the file. So the writer also keeps a *reserve*: a file of
``min_free_mb / 4`` allocated next to the session file (``<file>.reserve``, ``posix_fallocate``)
that it deletes the moment it stops, which gives the final flush and close room to land after
an ENOSPC of its own. Space given back to the filesystem can be taken by whoever fills the disk,
though, and an HDF5 close that meets ENOSPC leaves a file nobody can open. So the room the file
needs next is also *held in the file itself*: before every batch the writer preallocates, past
the file's end (``fallocate(FALLOC_FL_KEEP_SIZE)``: the size does not change, the blocks are
the file's), the batch's bytes, ``METADATA_SLACK`` included (:meth:`DiskGuard.hold_tail`;
:meth:`DiskGuard.check` counts what is held as free, for the file's own use). A disk
that cannot give that is a stop *before* the batch is written, and whatever fills the disk
afterwards cannot take the room the last flush and the close write into. What is left past the
end is punched back after the close (:meth:`DiskGuard.drop_tail`).

``min_free_mb`` = 0 turns the guard off (in-process uses: tests, replay, benchmarks).
"""

from __future__ import annotations

import ctypes
import errno
import os

OK, LOW, HALT, STOPPED = 0, 1, 2, 3
STATE_NAMES = {OK: "ok", LOW: "low", HALT: "halt", STOPPED: "stopped"}
#: exit status of a writer that stopped writing because the disk was full (errno ENOSPC)
EXIT_DISK_FULL = 28
#: slack for HDF5 metadata (chunk index, object headers, attributes) on top of raw chunk bytes
METADATA_SLACK = 256 << 10


FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
_libc = ctypes.CDLL(None, use_errno=True)
_fallocate = getattr(_libc, "fallocate64", None) or getattr(_libc, "fallocate", None)
if _fallocate is not None:
    _fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    _fallocate.restype = ctypes.c_int


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """Linux ``fallocate(2)`` (os.posix_fallocate has no mode); OSError on failure."""
    if _fallocate is None:
        raise OSError(errno.EOPNOTSUPP, "no fallocate in this libc")
    if _fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class DiskFull(OSError):
    """The records filesystem is (about to be) full: the writer stops writing."""

    def __init__(self, msg: str):
        super().__init__(errno.ENOSPC, msg)


def free_bytes(path: str) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def is_enospc(exc: BaseException) -> bool:
    """True for an error that means "no space left" (h5py often drops the errno: read the text)."""
    if isinstance(exc, DiskFull):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    text = str(exc).lower()
    return "no space left" in text or "disk quota" in text or "file too large" in text


class DiskGuard:
    """Free-space thresholds of one records directory (see the module docstring)."""

    def __init__(self, directory: str, min_free_mb: float):
        self.directory = directory
        self.min_free = int(float(min_free_mb) * (1 << 20))
        self.state = OK
        self.free = -1

    @property
    def enabled(self) -> bool:
        return self.min_free > 0

    def preflight(self) -> bool:
        """True when there is room to start a session (``min_free_mb`` free)."""
        if not self.enabled:
            return True
        self.free = free_bytes(self.directory)
        if self.free < self.min_free:
            self.state = STOPPED
            return False
        return True

    def check(self, need: int = 0) -> int:
        """Re-read free space; returns the state. ``need``: bytes about to be written. A batch
        that would leave less than the stop floor makes the state STOPPED *before* it is written."""
        if not self.enabled or self.state == STOPPED:
            return self.state
        self.free = free = free_bytes(self.directory) + self.held()
        if free - need < self.min_free // 4:
            self.state = STOPPED
        elif free < self.min_free // 2:
            self.state = max(self.state, HALT)
        elif free < self.min_free:
            self.state = max(self.state, LOW)
        return self.state

    def held(self) -> int:
        """Bytes held past the end of the file (:meth:`hold_tail`), not yet written into: free
        for the file's own next batch, so counted as free by :meth:`check`."""
        fd = getattr(self, "tail_fd", None)
        if fd is None:
            return 0
        try:
            return max(0, self.tail_end - os.fstat(fd).st_size)
        except OSError:
            return 0

    def hold_tail(self, fd: int, need: int = 0) -> None:
        """Preallocate ``need`` bytes (at least ``METADATA_SLACK``) past the end of the open file ``fd``
        (the size is unchanged, the blocks belong to the file): what the next batch, its flush and
        the close will write can then not meet ENOSPC, whoever fills the disk meanwhile. Raises
        DiskFull when the disk cannot give it (nothing written). A filesystem without
        FALLOC_FL_KEEP_SIZE just holds nothing (the reserve file is the fallback)."""
        if not self.enabled or getattr(self, "tail_unsupported", False):
            return
        size = os.fstat(fd).st_size
        end = size + max(need, METADATA_SLACK)
        try:
            fallocate(fd, FALLOC_FL_KEEP_SIZE, size, end - size)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise DiskFull(f"cannot hold {(end - size) / 2**20:.1f} MiB past the end of the records "
                               "file") from None
            self.tail_unsupported = True
            return
        self.tail_end = max(end, getattr(self, "tail_end", 0))
        self.tail_fd = fd

    def drop_tail(self, path: str) -> None:
        """After the close: give back what is still preallocated past the file's end."""
        end = getattr(self, "tail_end", 0)
        self.tail_end = 0
        self.tail_fd = None  # (closed with the file)
        if not end:
            return
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return
        try:
            size = os.fstat(fd).st_size
            if end > size:
                fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, size, end - size)
        except OSError:
            pass
        finally:
            os.close(fd)

    def stop(self) -> None:
        self.state = STOPPED
        self.release_reserve()

    def take_reserve(self, path: str) -> None:
        """Allocate the reserve (``min_free_mb / 4``) at ``path``; best effort (a filesystem
        without fallocate just has no reserve)."""
        if not self.enabled:
            return
        self.reserve_path = path
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError:
            self.reserve_path = None
            return
        try:
            os.posix_fallocate(fd, 0, max(1, self.min_free // 4))
        except OSError:
            pass
        finally:
            os.close(fd)

    def release_reserve(self) -> None:
        """Give the reserve back to the filesystem (at a stop, and at close)."""
        path = getattr(self, "reserve_path", None)
        if path:
            self.reserve_path = None
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def batch_bytes(size: int, k: int, chunk_rows: int, itemsize: int) -> int:
    """Bytes HDF5 allocates to append ``k`` rows to a chunked dataset of ``size`` rows: whole new
    chunks (an uncompressed chunk is allocated at full size when first written)."""
    new_chunks = -(-(size + k) // chunk_rows) - -(-size // chunk_rows)
    return new_chunks * chunk_rows * itemsize
