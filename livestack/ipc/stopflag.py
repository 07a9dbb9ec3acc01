"""A cross-process stop flag that no process can leave locked.

``multiprocessing.Event`` guards its flag with a shared lock: a process SIGKILLed inside
``is_set()`` (a venue killed by an operator, a test, the OOM killer) leaves that lock held, and the
supervisor's ``set()`` then blocks forever. This flag is one byte of shared memory written by the
supervisor and read by everyone, with no lock: the same surface (``set``, ``is_set``, ``clear``,
``wait``) for the process entry points that take ``stop``.
"""

from __future__ import annotations

import time


class StopFlag:
    def __init__(self, ctx):
        self._v = ctx.RawValue("b", 0)

    def set(self) -> None:
        self._v.value = 1

    def clear(self) -> None:
        self._v.value = 0

    def is_set(self) -> bool:
        return self._v.value != 0

    def wait(self, timeout: float | None = None) -> bool:
        """Poll every 10 ms until set or ``timeout`` seconds; returns whether it is set."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True
