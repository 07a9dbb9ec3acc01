"""What the record writer needs to know about the harness at stop: done (telemetry) or gone (pidfd).

(Split out of ``writer.py``, which it serves.)
"""

from __future__ import annotations

import os


class HarnessWatch:
    """What the writer needs to know about the harness at stop: done (telemetry) or gone (pidfd)."""

    def __init__(self, telemetry, pid: int):
        self.tel = telemetry
        self.pidfd = None
        if pid:
            try:
                self.pidfd = os.pidfd_open(pid)
            except (OSError, AttributeError):  # already gone, or no pidfd on this kernel
                self.pidfd = None

    def gone(self) -> bool:
        if self.tel is not None and self.tel.gauge("harness_done"):
            return True
        if self.pidfd is None:
            return self.tel is None  # nothing to wait for
        import select

        return bool(select.select([self.pidfd], [], [], 0)[0])  # readable once the process ended

    def last_seq(self) -> int:
        """The harness's last record seq once it is done, else 0 (unknown)."""
        if self.tel is not None and self.tel.gauge("harness_done"):
            return int(self.tel.gauge("rseq"))
        return 0

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
