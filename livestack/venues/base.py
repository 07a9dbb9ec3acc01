"""The Venue Adapter boundary.

A venue process reads ORDER_CMD records from its ``orders.<venue>`` ring, hands them to an adapter,
and writes the EXEC records the adapter reports into ``exec.<venue>``. The adapter owns everything
venue-specific (sockets, sessions, protocol translation); the process loop owns the rings.

Commands out: NEW, CANCEL, REPLACE (``OrderCmdType``). Execution events in: ACCEPTED, REJECTED,
PARTIALLY_FILLED, FILLED, CANCELED, CANCEL_REJECTED, REPLACED, EXPIRED (``ExecType``), with
``client_order_id`` (ours) and ``venue_order_id`` (theirs). The process loop itself adds
VENUE_RESET when an adapter that keeps its orders in-process is restarted (see ``process.py``).
"""

from __future__ import annotations

import abc

import numpy as np


class VenueAdapter(abc.ABC):
    """One venue connection. Called from a single thread: the venue process loop."""

    name: str = "venue"

    #: True when the orders live in this process (the simulated exchange): a restarted process
    #: has none of them, and the loop tells the core with a VENUE_RESET execution event. False for
    #: a venue that keeps orders across our reconnects (FIX: the exchange holds them).
    state_lost_on_restart: bool = False

    @abc.abstractmethod
    def start(self) -> None:
        """Connect / log on. May return before the session is up; ``poll`` reports progress."""

    @abc.abstractmethod
    def submit(self, cmds: np.ndarray) -> None:
        """Transmit ORDER_CMD records (dtype ``DTYPES["ORDER_CMD"]``), in order.

        Never raises for a bad command: a command the venue cannot take becomes a REJECTED or
        CANCEL_REJECTED execution event returned by ``poll``.
        """

    @abc.abstractmethod
    def poll(self, out: np.ndarray, now_ns: int) -> int:
        """Fill ``out`` (dtype ``DTYPES["EXEC"]``) with pending execution events; return how many.

        Events not returned stay queued for the next call: none is ever dropped.
        """

    def on_harness_lost(self) -> None:
        """The harness died: cancel every resting order of ours (cancel-on-disconnect)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Log out / disconnect."""
