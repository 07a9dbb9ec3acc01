"""Small HDF5 helpers the writer and the readers share: the superblock status-flag reset that
``h5clear -s`` does, without needing the HDF5 command-line tools.

Why this exists: a file written in SWMR mode carries "open for write / SWMR write" bits in its
superblock (format version 3). A writer that is SIGKILLed cannot clear them, and libhdf5 then
refuses every non-SWMR open of the file ("file is already open for write (may use <h5clear file>
...)"), including the restarted writer's. The writer proves no other writer is alive (its lock
file, see ``writer.py``) and then clears the bits here before reopening for append.

A SIGKILLed SWMR writer can also leave the superblock's end-of-allocation address ("EOF addr")
behind the data it had already written: SWMR orders raw data before the metadata that points at
it, but the superblock is rewritten only at close. Reads of a chunk allocated after the last
superblock write then fail with "addr overflow ... eoa = ...". ``h5clear --increment`` fixes that
by moving the EOA to at least the end of the file; ``clear_status_flags`` does the same.

Superblock version 2/3 layout (offsets for 8-byte addresses)::

     0        8     9     10    11     12            20            28           36          44        48
     +--------+-----+-----+-----+------+-------------+-------------+------------+-----------+---------+
     |\\x89HDF | ver | sz  | sz  |flags | base addr   | ext addr    | EOF addr   | root addr | lookup3 |
     | \\r\\n..| (3) | off | len |      |             |             |            |           | checksum|
     +--------+-----+-----+-----+------+-------------+-------------+------------+-----------+---------+
"""

from __future__ import annotations

import os

SIGNATURE = b"\x89HDF\r\n\x1a\n"
FLAGS_OFFSET = 11
_M = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum HDF5 puts on its metadata."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & _M
    i = 0
    while n - i > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & _M
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & _M
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & _M
        a = (a - c) & _M; a ^= _rot(c, 4); c = (c + b) & _M  # noqa: E702
        b = (b - a) & _M; b ^= _rot(a, 6); a = (a + c) & _M  # noqa: E702
        c = (c - b) & _M; c ^= _rot(b, 8); b = (b + a) & _M  # noqa: E702
        a = (a - c) & _M; a ^= _rot(c, 16); c = (c + b) & _M  # noqa: E702
        b = (b - a) & _M; b ^= _rot(a, 19); a = (a + c) & _M  # noqa: E702
        c = (c - b) & _M; c ^= _rot(b, 4); b = (b + a) & _M  # noqa: E702
        i += 12
    if n - i == 0:
        return c
    rest = data[i:] + bytes(12 - (n - i))
    a = (a + int.from_bytes(rest[0:4], "little")) & _M
    b = (b + int.from_bytes(rest[4:8], "little")) & _M
    c = (c + int.from_bytes(rest[8:12], "little")) & _M
    c ^= b; c = (c - _rot(b, 14)) & _M  # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & _M  # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & _M  # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & _M  # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & _M  # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & _M  # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & _M  # noqa: E702
    return c


def status_flags(path: str) -> int | None:
    """The superblock file-consistency flags, or None when the superblock is older than v2."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[:8] != SIGNATURE:
        raise ValueError(f"{path}: not an HDF5 file (no signature at offset 0)")
    if head[8] < 2:
        return None
    return head[FLAGS_OFFSET]


def clear_status_flags(path: str) -> int:
    """Reset the superblock's write/SWMR-write flags (``h5clear -s``) and, when the flags were
    set, move its end-of-allocation address to at least the file's size (``h5clear -i``, see the
    module docstring); returns the old flags.

    Only call this when no process has the file open for writing.
    """
    fd = os.open(path, os.O_RDWR)
    try:
        head = os.pread(fd, 12, 0)
        if head[:8] != SIGNATURE:
            raise ValueError(f"{path}: not an HDF5 file (no signature at offset 0)")
        version, size_off = head[8], head[9]
        if version < 2:
            return 0
        length = 12 + 4 * size_off  # fields up to (not including) the checksum
        sb = bytearray(os.pread(fd, length + 4, 0))
        if lookup3(bytes(sb[:length])) != int.from_bytes(sb[length:length + 4], "little"):
            raise ValueError(f"{path}: superblock checksum does not match; not clearing its flags")
        old = sb[FLAGS_OFFSET]
        if old == 0:
            return 0
        sb[FLAGS_OFFSET] = 0
        eoa_at = 12 + 2 * size_off  # after base addr and superblock-extension addr
        base = int.from_bytes(sb[12:12 + size_off], "little")
        eoa = int.from_bytes(sb[eoa_at:eoa_at + size_off], "little")
        size = os.fstat(fd).st_size - base  # (addresses are relative to the base address)
        if size > eoa:  # space between the two is leaked, never reused: harmless
            sb[eoa_at:eoa_at + size_off] = size.to_bytes(size_off, "little")
        sb[length:length + 4] = lookup3(bytes(sb[:length])).to_bytes(4, "little")
        os.pwrite(fd, bytes(sb), 0)
        os.fsync(fd)
        return old
    finally:
        os.close(fd)
