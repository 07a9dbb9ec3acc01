"""A child subreaper for tests that kill a supervisor: ``python reaper.py CMD...``.

Runs CMD as its child with ``PR_SET_CHILD_SUBREAPER`` set, so every process CMD leaves behind
when it dies is re-parented here instead of to PID 1. It reaps every descendant, prints
``reaper: exited <pid> <status>`` for each, and exits 0 once none is left (``ECHILD``): when the
reaper has exited, no process of the session can still be running. The first line it prints is
``reaper: child <pid>``. A hard limit (``REAPER_LIMIT_S``, default 120 s) SIGKILLs whatever is
still there and exits 3, so a hung test never leaves processes behind.
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
    child = subprocess.Popen(argv)
    print(f"reaper: child {child.pid}", flush=True)
    killed = False
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 3 if killed else 0
        if pid:
            print(f"reaper: exited {pid} {status}", flush=True)
            continue
        if time.monotonic() > limit and not killed:
            killed = True
            print("reaper: time limit: killing what is left", flush=True)
            for entry in os.listdir("/proc"):
                if entry.isdigit() and _ppid(int(entry)) == os.getpid():
                    try:
                        os.kill(int(entry), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        time.sleep(0.02)


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
