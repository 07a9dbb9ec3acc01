"""The FIX session's persistent state: sequence numbers and a journal of sent order commands."""

from __future__ import annotations

import os


class FileStore:
    """Sequence numbers and a journal of sent order commands, per session, in two small files.

    ``<base>.seqnums`` holds ``next_out next_in`` rewritten in place (one ``pwrite`` per change; the
    page cache survives a process crash, ``fsync=True`` also a machine crash). ``<base>.sent``
    appends one line per order command sent: ``seq msg_type cl_ord_id orig_cl_ord_id instrument
    side`` -- what a later ResendRequest or Reject needs to tell the application which order
    was not delivered. Message bodies are not stored: this initiator never resends an application
    message (it gap-fills instead).
    """

    MAX_JOURNAL = 100_000

    def __init__(self, directory: str, session_id: str, fsync: bool = False):
        os.makedirs(directory, exist_ok=True)
        safe = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in session_id)
        self.base = os.path.join(directory, safe)
        self.fsync = fsync
        self.next_out = 1
        self.next_in = 1
        self.sent: dict[int, tuple] = {}
        path = self.base + ".seqnums"
        if os.path.exists(path):
            with open(path, "rb") as f:
                parts = f.read().split()
            if len(parts) >= 2:
                self.next_out, self.next_in = int(parts[0]), int(parts[1])
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._write_seqnums()
        spath = self.base + ".sent"
        if os.path.exists(spath):
            with open(spath, "r") as f:
                for line in f:
                    p = line.split()
                    if len(p) == 6:
                        self.sent[int(p[0])] = (p[1], p[2], p[3], int(p[4]), int(p[5]))
            while len(self.sent) > self.MAX_JOURNAL:
                self.sent.pop(next(iter(self.sent)))
        self._sent_f = open(spath, "a", buffering=1)

    def _write_seqnums(self) -> None:
        data = b"%020d %020d\n" % (self.next_out, self.next_in)
        os.pwrite(self._fd, data, 0)
        if self.fsync:
            os.fsync(self._fd)

    def set_next_out(self, n: int) -> None:
        self.next_out = n
        self._write_seqnums()

    def set_next_in(self, n: int) -> None:
        self.next_in = n
        self._write_seqnums()

    def record_sent(self, seq: int, msg_type: str, cl_ord_id: str, orig: str, instrument: int, side: int) -> None:
        self.sent[seq] = (msg_type, cl_ord_id, orig or "-", instrument, side)
        self._sent_f.write(f"{seq} {msg_type} {cl_ord_id} {orig or '-'} {instrument} {side}\n")
        if len(self.sent) > self.MAX_JOURNAL:
            self.sent.pop(next(iter(self.sent)))

    def sent_in(self, begin: int, end: int) -> list[tuple[int, tuple]]:
        """Journal entries with begin <= seq <= end, in order (and forgets them)."""
        out = [(s, info) for s, info in self.sent.items() if begin <= s <= end]
        out.sort()
        for s, _ in out:
            del self.sent[s]
        return out

    def forget_sent_before(self, seq: int) -> None:
        """Drop journal entries below ``seq``: the peer reset its numbers, so a ResendRequest of
        it can no longer mean those (delivered, earlier-numbered) messages."""
        for s in [s for s in self.sent if s < seq]:
            del self.sent[s]

    def reset(self) -> None:
        """Both sequence numbers back to 1, journal cleared (ResetSeqNumFlag logon)."""
        self.next_out = self.next_in = 1
        self._write_seqnums()
        self.sent.clear()
        self._sent_f.close()
        self._sent_f = open(self.base + ".sent", "w", buffering=1)

    def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass
        self._sent_f.close()
