"""[strategy] is checked when the config is validated, i.e. before any process starts; replay
compares the recorded strategy identity."""

from __future__ import annotations

import pytest

from livestack.node import config
from livestack.records.replay import ReplayError, check_strategy_identity
from livestack.strategies import loader

GOOD = '''
import dataclasses
from livestack.strategies.sdk import Strategy, Qty

@dataclasses.dataclass
class P:
    qty: Qty = "0.001"

class S(Strategy):
    Params = P
'''


def test_a_strategy_that_cannot_load_is_a_config_error(tmp_path):
    with pytest.raises(config.ConfigError, match="no such file"):
        config.validate({"strategy": {"name": str(tmp_path / "missing.py") + ":S"}})
    bad = tmp_path / "bad.py"
    bad.write_text("import nonexistent_module_xyz\n")
    with pytest.raises(config.ConfigError, match="import failed: ModuleNotFoundError"):
        config.validate({"strategy": {"name": f"{bad}:S"}})


def test_params_are_validated_against_the_first_instrument(tmp_path):
    f = tmp_path / "good.py"
    f.write_text(GOOD)
    cfg = config.validate({"strategy": {"name": f"{f}:S", "params": {"qty": "0.002"}}})
    assert cfg["strategy"]["name"] == f"{f}:S" and cfg["strategy"]["on_error"] == "disable"
    with pytest.raises(config.ConfigError, match=r"param 'qty': '0.0001' is not exact in SIM's qty units"):
        config.validate({"strategy": {"name": f"{f}:S", "params": {"qty": "0.0001"}}})
    with pytest.raises(config.ConfigError, match="on_error"):
        config.validate({"strategy": {"name": f"{f}:S", "on_error": "explode"}})


def test_a_relative_file_reference_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "rel.py").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    cfg = config.validate({"strategy": {"name": "rel.py:S"}})
    assert cfg["strategy"]["name"] == f"{tmp_path / 'rel.py'}:S"


def test_replay_refuses_a_changed_strategy_unless_forced(tmp_path):
    f = tmp_path / "s.py"
    f.write_text(GOOD)
    ident = loader.load(f"{f}:S", None, config.instruments(config.validate({}))[0]).identity
    cfg = {"strategy": {"name": ident["ref"]}}
    assert check_strategy_identity(ident, cfg) is None
    f.write_text(GOOD + "\n# edited\n")
    with pytest.raises(ReplayError, match="changed since the session was recorded.*--force"):
        check_strategy_identity(ident, cfg)
    assert "changed" in check_strategy_identity(ident, cfg, force=True)
    assert check_strategy_identity({"ref": "mm_cy", "sha256": ""}, {"strategy": {"name": "mm_cy"}}) is None
