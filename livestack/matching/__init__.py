"""The one matching engine of livestack: the backtest (``livestack.backtest.sim``) and the simulated
venue process (``livestack.venues.sim``) both match orders with :class:`MatchingEngine`
(``engine.pyx``; the rules are in its module docstring)."""

from livestack.matching.engine import MatchingEngine, REASON_BAD_SIDE, REASON_BAD_TYPE, \
    REASON_POST_ONLY_WOULD_CROSS, REASON_QTY_BELOW_FILLED  # noqa: F401

__all__ = ["MatchingEngine", "REASON_BAD_SIDE", "REASON_BAD_TYPE", "REASON_POST_ONLY_WOULD_CROSS",
           "REASON_QTY_BELOW_FILLED"]
