"""A child subreaper for tests that kill a supervisor: ``python reaper.py CMD...``.

Runs CMD as its child with ``PR_SET_CHILD_SUBREAPER`` set, so every process CMD leaves behind
when it dies is re-parented here instead of to PID 1. It reaps every descendant, prints
``reaper: exited <pid> <status>`` for each, and exits 0 once none is left (``ECHILD``): when the
reaper has exited, no process of the session can still be running. The first line it prints is
``reaper: child <pid>``. A hard limit (``REAPER_LIMIT_S``, default 120 s), or a SIGTERM sent to
the reaper (a test's teardown), SIGKILLs every descendant, again on every pass as orphans are
re-parented here, and exits 3 once none is left, so a failed or hung test never leaves processes
behind (a SIGKILLed reaper could not do that: its descendants would go to PID 1).

Each line is one ``write``: the session's own processes share the pipe, and under
``PYTHONUNBUFFERED`` a ``print`` writes the text and its newline separately.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def main(argv: list[str]) -> int:
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1) != 0:
        print("reaper: PR_SET_CHILD_SUBREAPER failed", flush=True)
        return 2
    limit = time.monotonic() + float(os.environ.get("REAPER_LIMIT_S", "120"))
    told = []
    signal.signal(signal.SIGTERM, lambda *_: told.append(True))
    child = subprocess.Popen(argv)
    _say(f"reaper: child {child.pid}")
    killing = False
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 3 if killing else 0
        if pid:
            _say(f"reaper: exited {pid} {status}")
            continue
        if not killing and (told or time.monotonic() > limit):
            killing = True
            _say(f"reaper: {'told to stop' if told else 'time limit'}: killing what is left")
        if killing:  # every pass: a killed parent's children are re-parented here next
            for entry in os.listdir("/proc"):
                if entry.isdigit() and _ppid(int(entry)) == os.getpid():
                    try:
                        os.kill(int(entry), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        time.sleep(0.02)


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
