"""``[venue.options]`` of ``venue.kind = "sim"`` (the simulated exchange, ``livestack.venues.sim``;
its ``DEFAULTS`` are these fields' defaults)."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from msgspec import Meta

from livestack.feeds.sim_options import SimModelOptions
from livestack.venues.loop_options import VenueLoopOptions

_Ns = Annotated[int, Meta(ge=0)]


class SimVenueOptions(VenueLoopOptions, forbid_unknown_fields=True, kw_only=True):
    market: Literal["model", "capture", "none"] = "model"  # seeded order flow, a Binance capture replay, none
    seed: int = 1
    model: SimModelOptions | None = None
    events_per_s: Annotated[float, Meta(gt=0)] | None = None
    pace: bool = True
    virtual_time: bool = False
    capture_path: str | None = None      # market = "capture": the Binance capture (.gz)
    capture_market: Literal["usdm", "spot"] = "usdm"
    capture_limit: Annotated[int, Meta(ge=1)] | None = None
    replay_speed: Annotated[float, Meta(gt=0)] = 1.0
    replay_loop: bool = False
    order_latency_ns: _Ns = 50_000
    order_jitter_ns: _Ns = 10_000
    response_latency_ns: _Ns | None = None
    response_jitter_ns: _Ns | None = None
    md_latency_ns: _Ns = 20_000
    md_jitter_ns: _Ns = 5_000
    md_chunk: Annotated[int, Meta(ge=1)] = 512
    md_lead: Annotated[int, Meta(ge=1)] = 8192
    start_ns: _Ns | None = None
    exec_epoch: Annotated[int, Meta(ge=1)] | None = None
    max_orders: Annotated[int, Meta(ge=1)] = 4096
    seconds: Annotated[float, Meta(gt=0)] | None = None

    def check(self):
        if self.market == "capture":
            if not self.capture_path:
                return [("capture_path", "is required with market = 'capture'")]
            if not os.path.isfile(os.path.expanduser(self.capture_path)):
                return [("capture_path", f"= {self.capture_path!r}: no such file")]
        return []
