"""Bounded waits for tests: every wait has a hard timeout and names what it was waiting for."""

from __future__ import annotations

import time


def wait_for(pred, timeout: float, what, poll_s: float = 0.01) -> None:
    """Poll ``pred()`` every ``poll_s`` until it is true; TimeoutError naming ``what`` after ``timeout`` s.
    ``what`` may be a callable, called at the timeout, to say the state the wait ended in."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")
        time.sleep(poll_s)


def running(sup) -> bool:
    """``sup.poll()`` for a wait's predicate, but a session that has ended (a fatal failure, the
    harness gone) fails the wait at once with the supervisor's events instead of letting it run to
    its timeout under a message that blames the condition."""
    if not sup.poll():
        raise AssertionError("the session ended while waiting: " + "; ".join(sup.events[-12:]))
    return True
