import os

import pytest

from livestack.node.config import ConfigError, instruments, load, validate


def test_no_config_is_the_embedded_simulated_default():
    cfg = load(None)
    assert cfg["feed"]["kind"] == "sim" and cfg["venue"]["kind"] == "sim"
    assert cfg["strategy"]["name"] == "mm_cy"
    assert cfg["cpu"]["harness"] == os.cpu_count() - 1
    assert [i.symbol for i in instruments(cfg)] == ["SIM"]


def test_values_override_defaults_and_ints_widen_to_floats(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[harness]\ntimer_interval_ms = 5\n[strategy]\nname = "mm_numba"\nparams = {half_spread_ticks = 3}\n')
    cfg = load(str(p))
    assert cfg["harness"]["timer_interval_ms"] == 5.0 and cfg["harness"]["batch"] == 64
    assert cfg["strategy"]["params"] == {"half_spread_ticks": 3}


@pytest.mark.parametrize("raw,match", [
    ({"harness": {"bogus": 1}}, "unknown key 'harness.bogus'"),
    ({"nonsense": {}}, "unknown key 'nonsense'"),
    ({"harness": {"batch": "64"}}, "'harness.batch' must be int, got str"),
    ({"harness": 3}, "'harness' must be a table"),
    ({"cpu": {"harness": 4096}}, "'cpu.harness' = 4096: this machine has CPUs"),
    ({"rings": {"md_capacity": 1000}}, "power of two"),
    ({"venue": {"kind": "nyse"}}, "venue.kind"),
    ({"feed": {"kind": "replay"}}, "feed.kind"),
    ({"instruments": []}, "non-empty"),
    ({"instruments": [{"id": 1}]}, "needs 'symbol'"),
    ({"instruments": [{"id": 1, "symbol": "A", "tick": "1"}]}, r"instruments\[0\].tick' must be int"),
    ({"instruments": [{"id": 1, "symbol": "A", "colour": 1}]}, "unknown key 'instruments.0..colour'"),
    ({"instruments": [{"id": 1, "symbol": "A"}, {"id": 1, "symbol": "B"}]}, "duplicate"),
    ({"instruments": [{"id": 0, "symbol": "A"}]}, "id 0 outside"),
    ({"writer": {"fsync_interval_ms": -1.0}}, "'writer.fsync_interval_ms' must be >= 0"),
    ({"writer": {"flush_interval_ms": 0.0}}, "'writer.flush_interval_ms' must be > 0"),
])
def test_bad_config_is_a_clear_error_naming_the_key(raw, match):
    with pytest.raises(ConfigError, match=match):
        validate(raw)


def test_missing_file_and_bad_toml_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(str(tmp_path / "nope.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[harness\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(str(bad))


def test_risk_tables_merge_over_the_defaults_and_are_validated():
    cfg = validate({"risk": {"max_position": 7}})
    assert cfg["risk"]["max_position"] == 7 and cfg["risk"]["max_order_qty"] == 100
    with pytest.raises(ConfigError, match=r"\[risk\]: unknown risk key 'max_leverage'"):
        validate({"risk": {"max_leverage": 3}})
