"""``[venue.options]`` of ``venue.kind = "fix"`` (the table in ``livestack.venues.fix``'s docstring)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from livestack.venues.loop_options import VenueLoopOptions

_Pos = Annotated[float, Meta(gt=0)]


class FixVenueOptions(VenueLoopOptions, forbid_unknown_fields=True, kw_only=True):
    host: Annotated[str, Meta(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 9878
    sender_comp_id: Annotated[str, Meta(min_length=1)] = "LIVESTACK"
    target_comp_id: Annotated[str, Meta(min_length=1)] = "EXCHANGE"
    begin_string: Literal["FIX.4.0", "FIX.4.1", "FIX.4.2", "FIX.4.3", "FIX.4.4"] = "FIX.4.4"
    handl_inst: str | None = None
    heartbeat_s: Annotated[int, Meta(ge=1)] = 30
    username: str | None = None
    password: str | None = None
    store_dir: str = "fix-store"
    store_fsync: bool = False
    reset_on_logon: bool = False
    on_seq_too_low: Literal["logout", "reset"] = "logout"
    seq_too_low_retries: Annotated[int, Meta(ge=1)] = 3
    test_request_timeout_s: Annotated[float, Meta(ge=0)] = 0.0   # 0: heartbeat_s
    resend_timeout_s: Annotated[float, Meta(ge=0)] = 0.0         # 0: 2 * heartbeat_s
    mass_status: bool = False            # the peer supports OrderMassStatusRequest (35=AF): one per recovery
    positions_request: bool = False      # the peer supports RequestForPositions (35=AN): compared by the core
    account: str | None = None           # Account (1) of RequestForPositions (default: sender_comp_id)
    reject_storm_count: Annotated[int, Meta(ge=1)] = 20
    reject_storm_window_s: _Pos = 5.0
    reconnect_min_s: _Pos = 0.5
    reconnect_max_s: _Pos = 10.0
    #: connect/logon attempts in a row that may fail before the venue gives up and the session
    #: stops (exit 1, the reason on stderr); 0 = retry forever. Reset by every successful logon.
    logon_retries: Annotated[int, Meta(ge=0)] = 5
    logon_timeout_s: _Pos = 5.0
    logout_timeout_s: _Pos = 2.0
    connect_timeout_s: _Pos = 5.0
    stale_order_s: _Pos = 5.0
    test_request_factor: Annotated[float, Meta(ge=1)] = 1.2
    max_body: Annotated[int, Meta(ge=64)] = 1 << 20
    log_level: str = "INFO"

    def check(self):
        import os

        out = []
        if self.reconnect_max_s < self.reconnect_min_s:
            out.append(("reconnect_max_s", f"must be >= reconnect_min_s ({self.reconnect_min_s})"))
        if os.path.exists(self.store_dir) and not os.path.isdir(self.store_dir):
            out.append(("store_dir", f"= {self.store_dir!r}: exists and is not a directory"))
        return out
