"""The typed config schema: every problem at once, "did you mean", kinds registered by name, and
each kind's Struct defaults equal to what its process uses (no drift between the two)."""

import msgspec
import pytest

from livestack.node import config, schema


def test_every_problem_is_reported_once_with_its_path():
    with pytest.raises(config.ConfigError) as e:
        config.validate({"harness": {"batch": "64", "batc": 1}, "telemetry": {"metrics_port": 99999},
                         "feed": {"kind": "binance", "options": {"ws_ur": "x", "stale_ms": -1}},
                         "cpu": {"writer": 10**6}})
    errs = e.value.errors
    assert len(errs) == 6, errs
    assert "'harness.batch' must be int, got str '64'" in errs
    assert any(x.startswith("unknown key 'harness.batc' (did you mean 'batch'?") for x in errs)
    assert any(x.startswith("unknown key 'feed.options.ws_ur' (did you mean 'ws_url'?") for x in errs)
    assert "'feed.options.stale_ms' must be > 0.0, got -1" in errs
    assert "'telemetry.metrics_port' must be <= 65535, got 99999" in errs
    assert any(x.startswith("'cpu.writer' = 1000000: this machine has CPUs 0..") for x in errs)
    assert str(e.value).startswith("config: 6 problems:\n  - ")


def test_unknown_kind_suggests_and_lists_the_registered_ones():
    with pytest.raises(config.ConfigError, match=r"'venue.kind' = 'fx': unknown venue kind \(did you mean 'fix'\?; known: sim, fix"):
        config.validate({"venue": {"kind": "fx"}})


def test_a_kind_registered_by_another_module_is_validated_with_its_struct(monkeypatch):
    class MyOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
        url: str = "wss://x"
        depth: int = 10

        def check(self):
            return [("depth", "must be a multiple of 5")] if self.depth % 5 else []

    monkeypatch.setitem(schema.FEED_KINDS, "okx", MyOptions)
    cfg = config.validate({"feed": {"kind": "okx", "options": {"depth": 20}}})
    assert cfg["feed"]["options"] == {"url": "wss://x", "depth": 20}
    with pytest.raises(config.ConfigError, match="'feed.options.depth' must be a multiple of 5"):
        config.validate({"feed": {"kind": "okx", "options": {"depth": 7}}})


def _defaults(struct):
    return {f.name: f.default for f in msgspec.structs.fields(struct)}


def test_kind_structs_agree_with_the_defaults_their_processes_use():
    from livestack.feeds import binance_ws
    from livestack.feeds.binance_options import BinanceFeedOptions
    from livestack.venues import sim
    from livestack.venues.fix.options import FixVenueOptions
    from livestack.venues.fix.session import SessionOptions
    from livestack.venues.sim_options import SimVenueOptions

    sv = _defaults(SimVenueOptions)
    assert {k: sv[k] for k in sim.DEFAULTS} == sim.DEFAULTS
    assert set(sv) - set(sim.DEFAULTS) <= sim._PROCESS_OPTIONS
    bf = _defaults(BinanceFeedOptions)
    assert {k: bf[k] for k in binance_ws.DEFAULTS} == binance_ws.DEFAULTS
    fx = _defaults(FixVenueOptions)
    so = vars(SessionOptions({}))
    for k in ("host", "port", "begin_string", "sender_comp_id", "target_comp_id", "heartbeat_s", "store_dir",
              "reconnect_min_s", "reconnect_max_s", "logon_timeout_s", "logout_timeout_s", "connect_timeout_s",
              "test_request_factor", "max_body", "on_seq_too_low", "seq_too_low_retries", "logon_retries"):
        assert fx[k] == so[k], k


def test_config_show_defaults_come_from_the_schema():
    d = config.DEFAULTS
    assert d["telemetry"] == {"metrics_port": 0} and d["rings"]["records_capacity"] == 1 << 21
    assert d["instruments"][0]["symbol"] == "SIM"


def test_a_handed_over_struct_without_check_or_with_post_init_works(monkeypatch):
    class Leg(msgspec.Struct, forbid_unknown_fields=True):
        qty: int = 1

    class Plain(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
        key: str = ""
        legs: dict[str, Leg] = {}

        def __post_init__(self):
            if self.key == "secret":
                raise ValueError("give a path, not the key")

    monkeypatch.setitem(schema.VENUE_KINDS, "binance", Plain)
    cfg = config.validate({"venue": {"kind": "binance", "options": {"legs": {"a": {"qty": 2}}}}})
    assert cfg["venue"]["options"]["legs"] == {"a": {"qty": 2}}
    with pytest.raises(config.ConfigError) as e:
        config.validate({"venue": {"kind": "binance", "options": {"legs": {"a": {"qty": "2"}, "b": {"qt": 1}}}}})
    assert len(e.value.errors) == 2 and "'venue.options.legs.a.qty' must be int" in e.value.errors[0]
    with pytest.raises(config.ConfigError, match="'venue.options': give a path, not the key"):
        config.validate({"venue": {"kind": "binance", "options": {"key": "secret"}}})


def test_paths_that_cannot_be_used_are_errors(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(config.ConfigError) as e:
        config.validate({"session": {"records_dir": str(f)},
                         "venue": {"kind": "fix", "options": {"store_dir": str(f)}}})
    assert len(e.value.errors) == 2
    assert all("exists and is not a directory" in x for x in e.value.errors)


def test_control_reply_spin_is_configured_checked_and_reaches_the_server(monkeypatch):
    from livestack.control import server

    assert config.DEFAULTS["control"]["reply_spin_us"] == 50.0 and config.DEFAULTS["control"]["reply_spins"] == 20
    with pytest.raises(config.ConfigError, match=r"'control.reply_spin_us' must be >= 0.0, got -1"):
        config.validate({"control": {"reply_spin_us": -1}})
    cfg = config.validate({"control": {"reply_spin_us": 0, "reply_spins": 3}})
    opts = dict(cfg["control"])  # what the supervisor hands the control process (plus its endpoints)
    seen = {}
    monkeypatch.setattr(server, "Backoff", lambda kind, spins=None, **kw: seen.setdefault(kind, spins))
    srv = server.ControlServer.__new__(server.ControlServer)
    server.ControlServer._reply_options(srv, opts)
    assert srv.reply_spin_s == 0.0 and seen["backoff"] == 3
