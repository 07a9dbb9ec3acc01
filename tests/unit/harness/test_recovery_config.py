"""[recovery] (issue 14): a msgspec Struct validated when the config is."""

from __future__ import annotations

import numpy as np
import pytest

from livestack.core import inputs as R
from livestack.harness import recovery
from livestack.node import config
from livestack.schema import ControlCmdType


def test_defaults_and_core_arguments():
    r = recovery.parse(None)
    assert r.restart_harness is True and r.recover_timeout_s == 5.0
    kw = recovery.core_kwargs({"recovery": {"pending_timeout_s": 2.5, "reject_storm_n": 7}})
    assert kw["pending_timeout_ns"] == 2_500_000_000 and kw["reject_storm_n"] == 7


def test_pending_timeouts_and_reject_storms_are_on_by_default_but_not_for_files_from_before_them():
    on = recovery.core_kwargs(config.validate({}))
    assert on["pending_timeout_ns"] == 10_000_000_000 and on["reject_storm_n"] == 50
    assert on["reject_storm_window_ns"] == 1_000_000_000
    old = recovery.core_kwargs({"strategy": {"name": "x"}})   # a stored config without [recovery]
    assert old["pending_timeout_ns"] == 0 and old["reject_storm_n"] == 0


@pytest.mark.parametrize("bad,word", [({"bogus": 1}, "bogus"), ({"recover_timeout_s": -1}, "recover_timeout_s"),
                                      ({"reject_storm_n": "x"}, "reject_storm_n"), ({"standby": 9}, "standby"),
                                      ({"standby_poll_s": 0}, "standby_poll_s")])
def test_bad_recovery_options_are_config_errors_naming_the_key(bad, word):
    with pytest.raises(config.ConfigError, match=word):
        config.validate({"recovery": bad})


def test_the_next_epoch_counts_the_recovers_in_the_journal():
    j = R.slots([R.timer(1), R.control(2, int(ControlCmdType.RECOVER), arg0=1), R.control(3, int(ControlCmdType.STATUS)),
                 R.control(4, int(ControlCmdType.RECOVER), arg0=2)])
    assert recovery.count_recovers(j) == 2
    assert recovery.count_recovers(np.zeros(0, j.dtype)) == 0
