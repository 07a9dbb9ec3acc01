"""FIX session robustness (issue 14, item 4) against a scripted counterparty: a peer that resets
its sequence numbers (Logon 141=Y in session, SequenceReset-Reset without GapFillFlag, a lower
MsgSeqNum on logon without any flag: ``on_seq_too_low``), TestRequests that must not wait behind
a gap, a ResendRequest nobody answers, and our own TestRequest satisfied by any traffic."""

from __future__ import annotations

import pytest

from livestack.venues.fix import codec
from livestack.venues.fix.session import ACTIVE, DISCONNECTED, SessionOptions

from .peer import FakeClock
from .test_session import make, peer  # noqa: F401  (fixtures)


def test_logon_with_reset_flag_while_logged_on_resets_both_sides_and_is_answered(make, peer):  # noqa: F811
    s, app = make()
    peer.logon(s)
    for _ in range(3):
        peer.send(b"0")
    peer._until(lambda: s.next_in == 5, s, 5)
    peer.seq = 1
    peer.send(b"A", [(98, 0), (108, 30), (141, "Y")])            # the venue starts over at 1
    ans = peer.expect(s, b"A")
    assert (ans.get_int(34), ans.get(141)) == (1, b"Y")
    assert s.active and (s.next_in, s.next_out) == (2, 2) and s.stats["seq_resets_by_logon"] == 1
    assert s.stats["seq_too_low"] == 0
    peer.send(b"1", [(112, "after-reset")])                       # seq 2: in sequence
    assert peer.expect(s, b"0").get(112) == b"after-reset" and s.next_in == 3


def test_sequence_reset_reset_without_gap_fill_flag_or_with_n(make, peer):  # noqa: F811
    s, _ = make()
    peer.logon(s)
    peer.send(b"4", [(36, 20)], seq=7)                            # 123 absent: Reset, any MsgSeqNum
    peer._until(lambda: s.next_in == 20, s, 5)
    peer.send(b"4", [(123, "N"), (36, 30)], seq=3)                # 123=N: Reset too
    peer._until(lambda: s.next_in == 30, s, 5)
    assert s.active and s.stats["seq_resets_in"] == 2 and s.stats["resend_requests_out"] == 0


def _lower_logon(s, peer, seq=1):  # noqa: F811
    peer.accept(s)
    peer.expect(s, b"A")
    peer.send(b"A", [(98, 0), (108, 30)], seq=seq)


def test_peer_reset_without_flag_logs_out_with_backoff_then_stops(make, peer):  # noqa: F811
    s, app = make(seq_too_low_retries=3)
    s.store.set_next_in(10)
    for k in range(3):
        _lower_logon(s, peer)
        lo = peer.expect(s, b"5")
        assert b"MsgSeqNum too low" in lo.get(58) and peer.closed(s)
        peer.drop()
    assert s.state == DISCONNECTED and not s.enabled and s.stats["stopped_by_policy"] == 1
    assert "on_seq_too_low" in s.last_disconnect_reason
    peer._until(lambda: False, s, 0.6)                            # longer than the backoff: no 4th try
    assert s.stats["connects"] == 3 and s.stats["seq_too_low"] == 3


def test_a_good_logon_resets_the_too_low_count(make, peer):  # noqa: F811
    s, _ = make(seq_too_low_retries=2)
    s.store.set_next_in(10)
    _lower_logon(s, peer, seq=3)
    peer.expect(s, b"5")
    assert peer.closed(s)
    peer.drop()
    peer.seq = 10
    peer.logon(s)                                                 # a good one
    assert s.active and s._too_low_in_a_row == 0


def test_peer_reset_without_flag_is_followed_with_policy_reset(make, peer):  # noqa: F811
    s, app = make(on_seq_too_low="reset")
    s.store.set_next_in(10)
    s.store.record_sent(s.store.next_out, "D", "77", "", 1, 1)    # delivered in the old session
    s.store.set_next_out(s.store.next_out + 1)
    _lower_logon(s, peer, seq=1)
    peer._until(lambda: s.active, s, 5)
    assert s.next_in == 2 and s.stats["seq_too_low_accepted"] == 1
    peer.seq = 2
    peer.send(b"2", [(7, 1), (16, 0)])                             # the reset peer asks from 1
    gf = peer.expect(s, b"4")
    assert gf.get(123) == b"Y" and gf.get_int(36) == s.next_out
    assert app.not_delivered == []                                  # not reported as lost


def test_policy_is_validated():
    with pytest.raises(ValueError, match="on_seq_too_low"):
        SessionOptions({"on_seq_too_low": "ignore"})
    with pytest.raises(ValueError, match="seq_too_low_retries"):
        SessionOptions({"seq_too_low_retries": 0})


def test_test_request_behind_a_gap_is_answered_at_once_and_only_once(make, peer):  # noqa: F811
    s, _ = make()
    peer.logon(s)                                                  # their seq 1
    peer.send(b"0", seq=5)                                         # gap 2..4
    peer.expect(s, b"2")
    peer.send(b"1", [(112, "alive?")], seq=6)
    assert peer.expect(s, b"0").get(112) == b"alive?"              # not after the gap is filled
    peer.send(b"4", [(123, "Y"), (36, 5)], seq=2, poss_dup=True, orig_sending_ns=1)
    peer._until(lambda: s.next_in == 7, s, 5)
    assert peer.nothing_of(s, b"0") and s.stats["heartbeats_out"] == 1


def test_unanswered_resend_request_times_out_and_reconnects(make, peer):  # noqa: F811
    clock = FakeClock()
    s, _ = make(clock=clock, heartbeat_s=10, resend_timeout_s=3)
    peer.logon(s, heartbeat_s=10)
    peer.send(b"0", seq=5)
    peer.expect(s, b"2")
    for _ in range(5):                                             # traffic, but the gap stays open
        clock.advance(0.5)
        peer.send(b"0", seq=6)
        peer._until(lambda: False, s, 0.02)
    assert s.active
    clock.advance(1.0)
    lo = peer.expect(s, b"5")
    assert b"not filled" in lo.get(58) and peer.closed(s) and s.stats["resend_timeouts"] == 1
    peer.drop()
    clock.advance(1.0)                                             # backoff passed: it comes back
    peer.accept(s)
    assert peer.expect(s, b"A")


def test_any_message_answers_our_test_request(make, peer):  # noqa: F811
    clock = FakeClock()
    s, _ = make(clock=clock, heartbeat_s=1)
    peer.logon(s, heartbeat_s=1)
    clock.advance(1.3)
    peer.expect(s, b"1")
    peer.send(b"8", [(58, "busy venue, no heartbeat")])            # proves the line is alive
    peer._until(lambda: s._test_req_id is None, s, 5)
    clock.advance(1.1)                                             # > HeartBtInt after our TestRequest
    peer._until(lambda: False, s, 0.05)
    assert s.active and s.stats["test_request_timeouts"] == 0


def test_test_request_timeout_is_configurable(make, peer):  # noqa: F811
    clock = FakeClock()
    s, _ = make(clock=clock, heartbeat_s=30, test_request_timeout_s=2)
    peer.logon(s, heartbeat_s=30)
    clock.advance(36.5)                                            # 1.2 x HeartBtInt of silence
    peer.expect(s, b"1")
    clock.advance(2.5)                                             # not the whole 30 s
    assert peer.closed(s) and s.stats["test_request_timeouts"] == 1
    assert s.last_disconnect_reason == "no answer to TestRequest"
