"""Options of the generic venue process loop (``livestack.venues.process.run_loop``), shared by
every venue kind's options Struct (``class MyVenueOptions(VenueLoopOptions, ...)``)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class VenueLoopOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    harness_check_s: Annotated[float, Meta(gt=0)] = 0.05  # how often the loop checks that the harness lives
    batch: Annotated[int, Meta(ge=1)] = 256               # commands / events per loop call
    lost_flush_s: Annotated[float, Meta(ge=0)] = 1.0      # bound on flushing events after harness loss / stop
    attach_timeout_s: Annotated[float, Meta(gt=0)] = 10.0  # wait for the rings at start
    idle_spins: Annotated[int, Meta(ge=0)] = 100
    idle_yields: Annotated[int, Meta(ge=0)] = 10
    idle_max_sleep_ns: Annotated[int, Meta(ge=0)] = 1_000_000

    def check(self) -> list[tuple[str, str]]:
        return []
