"""Helpers over :meth:`TelemetryBlock.snapshot` dicts: compact summaries, rates between two
snapshots, and finding a running session's telemetry block."""

from __future__ import annotations

import os
import re

from livestack.ipc import shm

_TEL_RE = re.compile(r"^/ls\.(\d+)-([0-9a-z]+)\.telemetry$")


def compact(snap: dict) -> dict:
    """The snapshot without histogram bucket arrays (quantiles, count, sum and max kept)."""
    out = dict(snap)
    out["histograms"] = {k: {q: v for q, v in h.items() if q != "buckets"} for k, h in snap["histograms"].items()}
    return out


def rates(prev: dict | None, cur: dict) -> dict:
    """Per-second rate of every counter between two snapshots (empty when there is no previous one)."""
    if not prev:
        return {}
    dt = (cur["ts_ns"] - prev["ts_ns"]) / 1e9
    if dt <= 0:
        return {}
    return {k: (v - prev["counters"].get(k, 0)) / dt for k, v in cur["counters"].items()}


def find_block(session: str | None = None) -> str:
    """Segment name of a running session's telemetry block.

    ``session`` given: that session's block. Otherwise the newest block whose owning (supervisor)
    pid is alive. Raises FileNotFoundError with a hint when there is none.
    """
    if session:
        return shm.segment_name(session, "telemetry")
    best, best_mtime = None, -1.0
    for name in shm.list_segments():
        m = _TEL_RE.match(name)
        if not m or not shm.pid_alive(int(m.group(1))):
            continue
        try:
            mtime = os.stat(os.path.join(shm.SHM_DIR, name[1:])).st_mtime
        except OSError:
            continue
        if mtime > best_mtime:
            best, best_mtime = name, mtime
    if best is None:
        raise FileNotFoundError("no running livestack session with a telemetry block found "
                                "(start one with `livestack run`, or pass --telemetry NAME / --session ID)")
    return best
