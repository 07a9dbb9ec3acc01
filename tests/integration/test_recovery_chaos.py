"""A SIGKILLed harness comes back without a duplicate order or a lost fill (issue 14).

The whole stack (sim market + sim venue + market maker + writer + control) runs under the real
Supervisor; the harness is SIGKILLed mid-session (and, in the chaos run, the venue, writer and
control process too, at seeded random instants). Allowed outcome, for every run: each harness
kill is followed by a restart that rebuilds the core from the journal and returns to ACTIVE;
after the stop, 0 duplicate NewOrders, 0 lost or double-applied fills, final positions equal the
venue's fills, one contiguous record stream, and ``replay --verify`` passes over the whole file.
"""

from __future__ import annotations

import pytest

from livestack.testing.chaos import run_chaos

pytestmark = pytest.mark.slow


def _assert_clean(res):
    c = res.checks
    assert c["stop_rc"] == 0, res.events[-10:]
    assert c["contiguous"], c
    assert c["duplicate_orders"] == 0, c
    assert c["double_fills"] == 0 and c["lost_fills"] == 0, c
    assert c["exec_unconsumed"] == 0, c
    assert c["positions_equal"], c
    assert c["replay_verified"], c["replay_divergence"]


def test_a_sigkilled_harness_is_restarted_from_the_journal_and_trades_again(tmp_path):
    res = run_chaos(str(tmp_path / "records"), kills=3, seed=1, others_every=0)
    assert res.kills == {"harness": 3}
    assert len(res.recover_ms) == 3
    assert res.checks["new_orders"] > 0
    _assert_clean(res)


def test_seeded_chaos_20_kills_over_every_process(tmp_path):
    res = run_chaos(str(tmp_path / "records"), kills=20, seed=14, others_every=4)
    assert sum(res.kills.values()) == 20
    assert len(res.recover_ms) == res.kills["harness"]
    _assert_clean(res)
