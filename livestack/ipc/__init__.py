"""Inter-process plumbing: shared-memory segments, SPSC rings (one producer, one consumer, enforced),
wait strategies."""

from livestack.ipc.ring import FULL, OK, Ring, RingError, RingRoleTaken  # noqa: F401
from livestack.ipc.shm import (  # noqa: F401
    Segment, SegmentMissing, list_segments, new_session_id, pid_alive, remove_session, remove_stale, segment_name,
)
from livestack.ipc.wait import Backoff  # noqa: F401
