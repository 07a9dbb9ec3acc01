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
    # nothing the venue sent is lost: every event was consumed, except answers owed at the stop for
    # orders the records show ended (a stop-cancel's reject after a fill): never a fill
    assert c["exec_unconsumed_fills"] == 0 and c["exec_unconsumed_unexplained"] == 0, c
    assert c["positions_equal"], c
    assert c["replay_verified"], c["replay_divergence"]


def test_a_sigkilled_harness_is_restarted_from_the_journal_and_trades_again(tmp_path):
    res = run_chaos(str(tmp_path / "records"), kills=3, seed=1, others_every=0,
                    extra_config={"recovery": {"recover_timeout_s": 10.0, "standby": 0}})
    assert res.kills == {"harness": 3}
    assert len(res.recover_ms) == 3
    assert res.via_standby == [False] * 3  # standby = 0: each restart re-runs the whole journal
    assert res.checks["new_orders"] > 0
    _assert_clean(res)


def test_a_warm_standby_takes_over_from_a_sigkilled_harness(tmp_path):
    """Each kill finds a warm standby (the driver waits for one): it becomes the harness after
    running only the journal's tail, and the file still replays bit for bit across the takeovers."""
    res = run_chaos(str(tmp_path / "records"), kills=3, seed=2, others_every=0, wait_standby=True)
    assert res.kills == {"harness": 3}
    assert res.via_standby == [True] * 3, res.events
    assert res.checks["new_orders"] > 0
    _assert_clean(res)


def test_back_to_back_harness_kills_each_find_a_warm_standby(tmp_path):
    """The promoted standby forks its successor before it takes over, so the successor has the
    core as it is (warm at once) and a kill right after a takeover is again only a journal tail
    (a freshly spawned standby would still be importing, or re-running the whole journal)."""
    res = run_chaos(str(tmp_path / "records"), kills=5, seed=3, others_every=0, gap_s=(0.05, 0.2))
    assert res.kills == {"harness": 5}
    assert res.via_standby == [True] * 5, res.events
    assert res.warm_at_kill[1:] == [True] * 4, (res.warm_at_kill, res.events)
    assert sum("its forked successor is the standby" in e for e in res.events) == 5, res.events
    _assert_clean(res)


def test_seeded_chaos_20_kills_over_every_process(tmp_path):
    res = run_chaos(str(tmp_path / "records"), kills=20, seed=14, others_every=4)
    assert sum(res.kills.values()) == 20
    assert len(res.recover_ms) == res.kills["harness"]
    _assert_clean(res)


@pytest.mark.parametrize("mass", [False, True], ids=["per-order-status", "mass-status-and-positions"])
def test_seeded_chaos_with_the_fix_venue_against_quickfix(tmp_path, mass):
    """The same invariants with ``venue.kind = "fix"`` against the QuickFIX test exchange: every
    recovery asks the peer with OrderStatusRequest (35=H), or (``mass_status``,
    ``positions_request``) one OrderMassStatusRequest (35=AF) and a RequestForPositions (35=AN)
    whose positions the core compares with its own (none may differ: no RECON_MISMATCH); the
    exchange fills resting orders between kills."""
    pytest.importorskip("quickfix")
    from livestack.testing.chaos import FixPeer

    with FixPeer(str(tmp_path), mass=mass) as peer:
        res = run_chaos(str(tmp_path / "records"), kills=8, seed=42, others_every=4, extra_config=peer.config,
                        on_gap=peer.fill_some)
        sent = peer.sent
    assert sum(res.kills.values()) == 8
    assert res.checks["new_orders"] > 0
    if mass:
        assert sent.count("AF") > 0 and sent.count("AN") > 0, "no AF / AN reached the exchange"
        assert _anomalies(res.path, "RECON_MISMATCH") == 0
    else:
        assert sent.count("H") > 0, "no OrderStatusRequest reached the exchange"
    _assert_clean(res)


def _anomalies(path, name):
    import h5py

    from livestack.schema import Anomaly

    with h5py.File(path, "r") as f:
        return int((f["anomaly"]["code"][()] == int(Anomaly[name])).sum())
