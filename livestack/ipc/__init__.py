"""Inter-process plumbing: shared-memory segments, SPSC rings, wait strategies."""

from livestack.ipc.ring import FULL, OK, Ring, RingError  # noqa: F401
from livestack.ipc.shm import (  # noqa: F401
    SegmentMissing, list_segments, new_session_id, remove_session, remove_stale, segment_name,
)
from livestack.ipc.wait import Backoff  # noqa: F401
