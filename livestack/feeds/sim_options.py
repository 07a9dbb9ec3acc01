"""``[feed.options]`` of ``feed.kind = "sim"`` (the seeded simulated market, ``livestack.feeds.sim``)
and ``[venue.options.model]`` of the simulated venue: the order-flow model's parameters."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class SimModelOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``livestack.feeds.sim.ModelParams`` (prices in ticks, sizes in lots)."""

    events_per_s: Annotated[float, Meta(gt=0)] = 10_000.0
    start_price: Annotated[int, Meta(ge=0)] = 0
    levels: Annotated[int, Meta(ge=2)] = 20
    mean_qty: Annotated[float, Meta(ge=1)] = 8.0
    p_limit: Annotated[float, Meta(gt=0, lt=1)] = 0.55
    p_cancel: Annotated[float, Meta(ge=0, lt=1)] = 0.35
    p_improve: Annotated[float, Meta(ge=0, le=1)] = 0.25
    depth_decay: Annotated[float, Meta(gt=0, lt=1)] = 0.15
    mean_market_qty: Annotated[float, Meta(ge=1)] = 6.0
    fair_sigma: Annotated[float, Meta(ge=0)] = 0.04
    lean: float = 0.08
    bbo: bool = True

    def check(self):
        if self.p_limit + self.p_cancel >= 1:
            return [("p_cancel", f"p_limit + p_cancel must be < 1, got {self.p_limit} + {self.p_cancel}")]
        return []


class SimFeedOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    seed: int = 1
    pace: bool = True                    # simulated time follows the wall clock; False: as fast as the ring takes it
    model: SimModelOptions | None = None
    events_per_s: Annotated[float, Meta(gt=0)] | None = None  # overrides model.events_per_s
    seconds: Annotated[float, Meta(gt=0)] | None = None       # run time limit (None: until stopped)

    def check(self):
        return []
