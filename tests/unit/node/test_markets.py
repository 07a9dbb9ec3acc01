"""[[feeds]] / [[venues]] (issue 16.1): the config forms, their errors, the shorthand, routing."""

import pytest

from livestack.node import config, launch, markets
from livestack.node.config import ConfigError

TWO = {
    "feeds": [{"name": "spot", "kind": "binance", "options": {"market": "spot"}},
              {"name": "usdm", "kind": "binance", "options": {"market": "usdm"}}],
    "venues": [{"name": "a"}, {"name": "b", "kind": "sim", "options": {"market": "none"}}],
    "instruments": [{"id": 1, "symbol": "BTCUSDT", "feed": "spot", "venue": "a"},
                    {"id": 2, "symbol": "BTCUSDT", "feed": "usdm", "venue": "b"}],
    "strategy": {"name": "none"},
}


def errors_of(raw) -> str:
    with pytest.raises(ConfigError) as e:
        config.validate(raw)
    return str(e.value)


def test_the_single_feed_and_venue_are_shorthand_for_one_named_default():
    cfg = config.validate({"feed": {"kind": "sim"}, "venue": {"kind": "sim"}})
    assert [(f["name"], f["kind"]) for f in cfg["feeds"]] == [("default", "sim")]
    assert [(v["name"], v["kind"]) for v in cfg["venues"]] == [("default", "sim")]
    assert cfg["instruments"][0]["feed"] == "default"
    assert markets.process_name("feed", "default") == "feed" and launch.ring_suffix(cfg["venues"][0]) == "sim"
    assert config.validate(cfg) == cfg, "a validated config validates again to itself"


def test_named_feeds_and_venues_route_each_instrument():
    cfg = config.validate(TWO)
    insts = config.instruments(cfg)
    assert [markets.feed_index(cfg, i) for i in insts] == [0, 1]
    assert [markets.venue_index(cfg, i) for i in insts] == [0, 1]
    assert [i.id for i in markets.of_venue(cfg, insts, 1)] == [2]
    assert cfg["feed"]["kind"] == "binance" and cfg["feed"]["options"]["market"] == "spot"  # mirrors feeds[0]
    assert markets.summary(cfg)["venues"] == [{"name": "a", "kind": "sim", "ring": "a", "instruments": [1]},
                                             {"name": "b", "kind": "sim", "ring": "b", "instruments": [2]}]
    assert config.validate(cfg) == cfg
    assert markets.process_name("venue", "b") == "venue.b" and launch.role("venue.b") == "venue"


def test_one_of_several_venues_must_be_named_by_each_instrument():
    raw = dict(TWO, instruments=[{"id": 1, "symbol": "X", "feed": "spot", "venue": "sim"},
                                 {"id": 2, "symbol": "Y", "feed": "usdm", "venue": "b"}])
    assert "'instruments[0].venue': name one of the [[venues]] ('a', 'b'); 'sim' is not one of them" in errors_of(raw)


def test_a_misspelled_feed_name_gets_a_did_you_mean():
    raw = dict(TWO, instruments=[{"id": 1, "symbol": "X", "feed": "spt", "venue": "a"},
                                 {"id": 2, "symbol": "Y", "feed": "usdm", "venue": "b"}])
    assert "did you mean 'spot'?" in errors_of(raw)


def test_both_forms_at_once_are_refused_with_the_new_form_shown():
    msg = errors_of(dict(TWO, feed={"kind": "sim"}))
    assert "give [feed] or [[feeds]], not both" in msg and "each [[instruments]] entry names its feed" in msg


def test_names_are_unique_and_usable_in_ring_names_and_labels():
    assert "name 'a' given more than once" in errors_of(dict(TWO, venues=[{"name": "a"}, {"name": "a"}]))
    assert "'feeds[0].name' = 'a b'" in errors_of(dict(TWO, feeds=[{"name": "a b"}, TWO["feeds"][1]]))
    assert "'feeds[0]' needs 'name'" in errors_of(dict(TWO, feeds=[{"kind": "sim"}]))


def test_a_feed_no_instrument_names_is_refused():
    raw = dict(TWO, instruments=[{"id": 1, "symbol": "X", "feed": "spot", "venue": "a"},
                                 {"id": 2, "symbol": "Y", "feed": "spot", "venue": "b"}])
    assert "'feeds[1]' ('usdm'): no [[instruments]] entry names it" in errors_of(raw)


def test_each_feeds_options_are_checked_by_its_kind():
    raw = dict(TWO, feeds=[TWO["feeds"][0], {"name": "usdm", "kind": "binance", "options": {"markt": "usdm"}}])
    assert "unknown key 'feeds[1].options.markt'" in errors_of(raw)
    assert "'venues[1].kind' = 'simm': unknown venue kind" in errors_of(dict(TWO, venues=[{"name": "a"},
                                                                                        {"name": "b", "kind": "simm"}]))


def test_one_symbol_may_repeat_on_two_feeds_but_not_on_one():
    raw = dict(TWO, instruments=[{"id": 1, "symbol": "X", "feed": "spot", "venue": "a"},
                                 {"id": 2, "symbol": "X", "feed": "spot", "venue": "b"},
                                 {"id": 3, "symbol": "Y", "feed": "usdm", "venue": "b"}])
    assert "duplicate id or symbol 2/X" in errors_of(raw)


def test_a_sim_venue_publishes_the_sim_feed_that_carries_exactly_its_instruments():
    cfg = config.validate({"feeds": [{"name": "m1"}, {"name": "m2"}], "venues": [{"name": "v1"}, {"name": "v2"}],
                           "instruments": [{"id": 1, "symbol": "A", "feed": "m1", "venue": "v1"},
                                           {"id": 2, "symbol": "B", "feed": "m2", "venue": "v2"}],
                           "strategy": {"name": "none"}})
    assert launch._sim_publishes(cfg, config.instruments(cfg)) == {0: 0, 1: 1}
    cfg = config.validate({"feeds": [{"name": "m1"}], "venues": [{"name": "v1"}, {"name": "v2"}],
                           "instruments": [{"id": 1, "symbol": "A", "venue": "v1"},
                                           {"id": 2, "symbol": "B", "venue": "v2"}],
                           "strategy": {"name": "none"}})
    assert launch._sim_publishes(cfg, config.instruments(cfg)) == {}, "a feed over two venues runs as its own process"


def test_secrets_of_each_named_feed_and_venue_are_redacted():
    from livestack import secrets

    cfg = {"feeds": [{"name": "a", "options": {"listen_key": "LK"}}],
           "venues": [{"name": "v", "options": {"new_password": "NP", "username": "u"}}]}
    red = secrets.redact_config(cfg)
    assert red["feeds"][0]["options"]["listen_key"] == secrets.REDACTED
    assert red["venues"][0]["options"] == {"new_password": secrets.REDACTED, "username": "u"}


def test_the_start_banner_names_feeds_and_venues():
    assert launch.describe(config.validate({})) == "feed      sim   venue sim"
    assert launch.describe(config.validate(TWO)) == "feeds     spot (binance), usdm (binance)   venues a (sim), b (sim)"
