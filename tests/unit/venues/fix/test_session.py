"""FIX session layer against a scripted counterparty: every inbound rule of the session table in
``livestack/venues/fix/session.py``, timers on a fake clock (no waiting on heartbeats)."""

from __future__ import annotations

import pytest

from livestack.venues.fix import codec
from livestack.venues.fix.session import ACTIVE, DISCONNECTED, BusinessReject, FixSession, SessionApp

from .peer import NOW, FakeClock, Peer


class RecordingApp(SessionApp):
    def __init__(self):
        self.app_msgs, self.not_delivered, self.rejects, self.logons, self.disconnects = [], [], [], 0, []
        self.answer = None

    def on_logon(self, s):
        self.logons += 1

    def on_disconnect(self, s, reason):
        self.disconnects.append(reason)

    def on_app_message(self, s, msg):
        self.app_msgs.append(msg)
        return self.answer

    def on_not_delivered(self, s, seq, info):
        self.not_delivered.append((seq, info))

    def on_session_reject(self, s, ref, info, msg):
        self.rejects.append((ref, info))


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.close()


@pytest.fixture
def make(tmp_path, peer):
    made = []

    def _make(clock=None, **opts):
        o = dict(port=peer.port, sender_comp_id="LIVESTACK", target_comp_id="EXCHANGE", heartbeat_s=30,
                 store_dir=str(tmp_path / "store"), reconnect_min_s=0.05, reconnect_max_s=0.4)
        o.update(opts)
        app = RecordingApp()
        kw = {"mono_clock": clock} if clock is not None else {}
        s = FixSession(o, app, **kw)
        s.start()
        made.append(s)
        return s, app
    yield _make
    for s in made:
        s._disconnect("test teardown")
        s.store.close()


def test_logon_carries_heartbeat_and_credentials(make, peer):
    s, app = make(username="trader", password="secret", heartbeat_s=7)
    m = peer.logon(s)
    assert (m.get_int(34), m.get(98), m.get(108), m.get(553), m.get(554)) == (1, b"0", b"7", b"trader", b"secret")
    assert not m.has(141)
    assert s.state == ACTIVE and app.logons == 1 and s.next_in == 2 and s.next_out == 2


def test_test_request_is_answered_with_its_id(make, peer):
    s, _ = make()
    peer.logon(s)
    peer.send(b"1", [(112, "ping-1")])
    hb = peer.expect(s, b"0")
    assert hb.get(112) == b"ping-1" and s.next_in == 3


def test_garbled_messages_are_ignored_and_the_gap_is_requested_and_filled(make, peer):
    s, app = make()
    peer.logon(s)                                              # their seq 1
    bad_cs = peer.build(b"8", [(58, "lost")])                  # seq 2, checksum broken below
    bad_cs = bad_cs[:-4] + b"%03d\x01" % ((int(bad_cs[-4:-1]) + 7) % 256)
    bad_len = peer.build(b"8", [(58, "lost too")])             # seq 3, BodyLength broken below
    bad_len = bad_len.replace(b"9=", b"9=1", 1)
    peer.send_raw(bad_cs + b"\x00garbage\xff" + bad_len)
    peer.send(b"8", [(58, "after the gap")])                   # seq 4: shows the gap
    rr = peer.expect(s, b"2")
    assert (rr.get_int(7), rr.get_int(16)) == (2, 0)
    assert s.stats["bad_checksum"] == 1 and s.stats["garbled"] >= 2 and s.active
    assert app.app_msgs == [] and s.next_in == 2               # seq 4 waits behind the gap
    # the venue resends 2 and gap-fills 3 (possdup), then 4 is processed from the queue
    peer.send(b"8", [(58, "resent")], seq=2, poss_dup=True, orig_sending_ns=NOW)
    peer.send(b"4", [(123, "Y"), (36, 4)], seq=3, poss_dup=True, orig_sending_ns=NOW)
    peer._until(lambda: len(app.app_msgs) == 2, s, 5)
    assert [m.get(58) for m in app.app_msgs] == [b"resent", b"after the gap"]
    assert s.next_in == 5 and s.active and s.stats["resend_requests_out"] == 1


def test_only_one_resend_request_per_gap(make, peer):
    s, _ = make()
    peer.logon(s)
    for seq in (5, 6, 7):
        peer.send(b"0", seq=seq)
    peer.expect(s, b"2")
    assert peer.nothing_of(s, b"2") and s.stats["resend_requests_out"] == 1


def test_seq_too_low_without_possdup_logs_out_and_disconnects(make, peer):
    s, app = make()
    peer.logon(s)
    peer.send(b"0")                                           # seq 2
    peer.send(b"0", seq=2)                                    # again, not a possible duplicate
    lo = peer.expect(s, b"5")
    assert b"MsgSeqNum too low" in lo.get(58)
    assert peer.closed(s) and s.state == DISCONNECTED and s.stats["seq_too_low"] == 1


def test_possdup_below_expected_is_ignored_and_without_orig_sending_time_rejected(make, peer):
    s, app = make()
    peer.logon(s)
    peer.send(b"8", [(58, "x")])                              # seq 2
    peer.send(b"8", [(58, "x")], seq=2, poss_dup=True, orig_sending_ns=NOW)
    peer.send(b"0")                                           # seq 3
    peer._until(lambda: s.next_in == 4, s, 5)
    assert len(app.app_msgs) == 1 and s.stats["poss_dup_ignored"] == 1
    raw = peer.enc.encode(b"0", 2, NOW, [(43, "Y")])          # PossDupFlag without OrigSendingTime
    peer.send_raw(raw)
    rj = peer.expect(s, b"3")
    assert (rj.get_int(45), rj.get_int(371), rj.get_int(373)) == (2, 122, 1) and s.active


def test_resent_message_with_orig_sending_time_after_sending_time_is_rejected_and_logged_out(make, peer):
    s, app = make()
    peer.logon(s)
    peer.send(b"8", [(58, "x")], poss_dup=True, orig_sending_ns=NOW + 10**9)  # seq 2, "sent" later
    rj = peer.expect(s, b"3")
    assert (rj.get_int(45), rj.get_int(371), rj.get_int(373)) == (2, 122, 10)
    peer.expect(s, b"5")
    assert peer.closed(s) and app.app_msgs == []


def test_sequence_reset_reset_moves_expected_forward_and_never_back(make, peer):
    s, _ = make()
    peer.logon(s)
    peer.send(b"4", [(36, 50)], seq=99)                       # Reset: seq number ignored
    peer._until(lambda: s.next_in == 50, s, 5)
    assert s.next_in == 50
    peer.send(b"4", [(36, 10)], seq=50)
    rj = peer.expect(s, b"3")
    assert (rj.get_int(371), rj.get_int(373)) == (36, 5) and s.next_in == 50 and s.active


def test_gap_fill_that_goes_backwards_is_rejected(make, peer):
    s, _ = make()
    peer.logon(s)
    peer.send(b"4", [(123, "Y"), (36, 2)], seq=2)            # NewSeqNo not above MsgSeqNum
    rj = peer.expect(s, b"3")
    assert (rj.get_int(45), rj.get_int(371), rj.get_int(373)) == (2, 36, 5) and s.next_in == 3


def test_resend_request_is_answered_with_one_gap_fill_and_orders_are_not_resent(make, peer):
    s, app = make()
    peer.logon(s)
    enc = s.enc
    for cid in (1, 2):
        s.send_app(lambda seq, now, cid=cid: enc.new_order_single(seq, now, b"%d" % cid, b"BTCUSDT", 1, 1, 1, 100, 2, 1, 0),
                   "D", str(cid), "", 1, 1)
    peer.expect(s, b"D")
    peer.expect(s, b"D")
    assert s.next_out == 4
    peer.send(b"2", [(7, 2), (16, 0)])
    gf = peer.expect(s, b"4")
    assert (gf.get_int(34), gf.get(123), gf.get_int(36), gf.get(43)) == (2, b"Y", 4, b"Y") and gf.has(122)
    assert peer.nothing_of(s, b"D")
    assert [(seq, info[0], info[1]) for seq, info in app.not_delivered] == [(2, "D", "1"), (3, "D", "2")]
    assert s.next_out == 4 and s.active


def test_compid_problem_is_rejected_then_logged_out(make, peer):
    s, _ = make()
    peer.logon(s)
    other = codec.Encoder("FIX.4.4", "INTRUDER", "LIVESTACK")
    peer.send_raw(other.heartbeat(2, NOW))
    rj = peer.expect(s, b"3")
    assert rj.get_int(373) == 9
    peer.expect(s, b"5")
    assert peer.closed(s) and s.state == DISCONNECTED


def test_wrong_begin_string_or_missing_seqnum_logs_out(make, peer):
    s, _ = make()
    peer.logon(s)
    peer.send_raw(codec.Encoder("FIX.4.2", "EXCHANGE", "LIVESTACK").heartbeat(2, NOW))
    peer.expect(s, b"5")
    assert peer.closed(s)
    peer.drop()
    peer.seq = 2
    peer.logon(s)
    raw = b"35=0\x0149=EXCHANGE\x0152=20240101-00:00:01.500\x0156=LIVESTACK\x01"
    head = b"8=FIX.4.4\x019=%d\x01" % len(raw)
    peer.send_raw(head + raw + b"10=%03d\x01" % (sum(head + raw) % 256))
    lo = peer.expect(s, b"5")
    assert b"MsgSeqNum" in lo.get(58) and peer.closed(s)


def test_first_message_must_be_a_logon(make, peer):
    s, _ = make()
    peer.accept(s)
    peer.expect(s, b"A")
    peer.send(b"0")
    assert peer.closed(s) and s.state == DISCONNECTED and "not a Logon" in s.last_disconnect_reason


def test_refused_logon_is_reported_and_retried(make, peer):
    s, _ = make()
    peer.accept(s)
    peer.expect(s, b"A")
    peer.send(b"5", [(58, "bad password")])
    peer.drop()
    peer._until(lambda: s.state == DISCONNECTED, s, 5)
    assert s.last_disconnect_reason == "logon refused: bad password"
    peer.accept(s)                                          # retried after the backoff
    peer.expect(s, b"A")


def test_logon_with_a_higher_seqnum_is_accepted_then_the_gap_requested(make, peer):
    s, _ = make()
    peer.accept(s)
    peer.expect(s, b"A")
    peer.seq = 5
    peer.send(b"A", [(98, 0), (108, 30)])
    rr = peer.expect(s, b"2")
    assert s.active and (rr.get_int(7), rr.get_int(16)) == (1, 0)
    peer.send(b"4", [(123, "Y"), (36, 6)], seq=1, poss_dup=True, orig_sending_ns=NOW)
    peer._until(lambda: s.next_in == 6, s, 5)
    assert s.next_in == 6


def test_logon_with_a_lower_seqnum_logs_out(make, peer, tmp_path):
    s, _ = make()
    s.store.set_next_in(10)
    peer.accept(s)
    peer.expect(s, b"A")
    peer.send(b"A", [(98, 0), (108, 30)], seq=3)
    lo = peer.expect(s, b"5")
    assert b"too low" in lo.get(58) and peer.closed(s)


def test_unknown_application_message_gets_business_reject_and_app_can_reject(make, peer):
    s, app = make()
    peer.logon(s)
    app.answer = "unsupported"
    peer.send(b"W", [(262, "x")])
    bmr = peer.expect(s, b"j")
    assert (bmr.get_int(45), bmr.get(372), bmr.get_int(380)) == (2, b"W", 3)
    app.answer = (1, 17, "Required tag missing")
    peer.send(b"8", [(11, "1")])
    rj = peer.expect(s, b"3")
    assert (rj.get_int(45), rj.get_int(371), rj.get_int(373)) == (3, 17, 1) and s.next_in == 4


def test_repeated_or_empty_fields_are_rejected_at_the_session_level_and_counted(make, peer):
    s, app = make()
    peer.logon(s)
    peer.send(b"1", [(112, "a"), (112, "b")])            # a TestRequest with two TestReqIDs
    rj = peer.expect(s, b"3")
    assert (rj.get_int(45), rj.get_int(371), rj.get_int(373)) == (2, 112, 13)
    peer.send(b"1", [(112, "")])                         # a TestReqID without a value
    rj = peer.expect(s, b"3")
    assert (rj.get_int(45), rj.get_int(371), rj.get_int(373)) == (3, 112, 4)
    peer.send(b"W", [(262, "x"), (58, "t"), (58, "u")])  # never reaches the application
    rj = peer.expect(s, b"3")
    assert (rj.get_int(45), rj.get_int(371), rj.get_int(373)) == (4, 58, 13)
    assert peer.nothing_of(s, b"0") and app.app_msgs == [] and s.next_in == 5 and s.active
    assert s.rejects_by_reason == {"session.tag_appears_more_than_once": 2, "session.tag_without_value": 1}
    app.answer = BusinessReject(2, "Unknown Security", "E1")
    peer.send(b"8", [(11, "1")])
    bj = peer.expect(s, b"j")
    assert (bj.get_int(45), bj.get(372), bj.get(379), bj.get_int(380)) == (5, b"8", b"E1", 2)
    assert s.rejects_by_reason["business.unknown_security"] == 1


def test_counterparty_reject_of_our_order_reaches_the_app(make, peer):
    s, app = make()
    peer.logon(s)
    enc = s.enc
    seq = s.send_app(lambda q, now: enc.new_order_single(q, now, b"9", b"BTCUSDT", 1, 1, 1, 100, 2, 1, 0), "D", "9", "", 1, 1)
    peer.send(b"3", [(45, seq), (373, 5), (58, "bad")])
    peer._until(lambda: app.rejects, s, 5)
    assert app.rejects == [(seq, ("D", "9", "-", 1, 1))]


# --- timers on a fake clock ---------------------------------------------------------------------

def test_idle_session_sends_heartbeats_and_tests_a_silent_counterparty(make, peer):
    clock = FakeClock()
    s, _ = make(clock=clock, heartbeat_s=1)
    peer.logon(s, heartbeat_s=1)
    n_hb = s.stats["heartbeats_out"]
    clock.advance(1.05)
    peer.expect(s, b"0")
    assert s.stats["heartbeats_out"] == n_hb + 1
    clock.advance(0.3)                                      # 1.35 s of silence > 1.2 x HeartBtInt
    tr = peer.expect(s, b"1")
    peer.send(b"0", [(112, tr.get(112))])
    peer._until(lambda: s._test_req_id is None, s, 5)
    assert s.active and s._test_req_id is None
    clock.advance(1.5)
    peer.expect(s, b"1")
    clock.advance(1.1)                                      # no answer within HeartBtInt: disconnect
    assert peer.closed(s) and "TestRequest" in s.last_disconnect_reason


def test_reconnects_with_doubling_backoff(make, peer):
    clock = FakeClock()
    s, app = make(clock=clock)
    peer.logon(s)
    peer.drop()
    peer._until(lambda: s.state == DISCONNECTED, s, 5)
    for delay in (0.05, 0.1, 0.2, 0.4, 0.4):                # reconnect_min_s doubling to reconnect_max_s
        n = s.stats["connects"]
        clock.advance(delay * 0.9)
        s.poll()
        assert s.stats["connects"] == n
        clock.advance(delay * 0.2)
        peer.accept(s)                                      # it connects ...
        peer.expect(s, b"A")
        peer.drop()                                         # ... and we hang up before the Logon answer
        peer._until(lambda: s.state == DISCONNECTED, s, 5)
    clock.advance(1)
    peer.logon(s)
    assert s.active and app.logons == 2
    assert s._backoff == 0.05                               # a Logon resets the backoff


def test_logon_timeout_disconnects(make, peer):
    clock = FakeClock()
    s, _ = make(clock=clock, logon_timeout_s=2)
    peer.accept(s)
    peer.expect(s, b"A")
    clock.advance(2.5)
    assert peer.closed(s) and s.last_disconnect_reason == "logon timeout"


# --- logout, persistence ------------------------------------------------------------------------

def test_logout_from_the_venue_is_answered(make, peer):
    s, app = make()
    peer.logon(s)
    peer.send(b"5", [(58, "end of day")])
    peer.expect(s, b"5")
    assert peer.closed(s) and s.state == DISCONNECTED and "end of day" in app.disconnects[-1]


def test_our_logout_waits_for_the_answer(make, peer):
    s, _ = make()
    peer.logon(s)
    s.logout()
    peer.expect(s, b"5")
    assert s.state == "LOGOUT_SENT"
    peer.send(b"5")
    assert peer.closed(s) and s.state == DISCONNECTED
    assert peer.nothing_of(s, b"A")                         # stays logged out


def test_sequence_numbers_persist_across_restarts(make, peer, tmp_path):
    s, _ = make()
    peer.logon(s)
    peer.send(b"0")
    peer.send(b"1", [(112, "t")])
    peer.expect(s, b"0")
    peer._until(lambda: s.next_in == 4, s, 5)
    out_before = s.next_out
    s._disconnect("process killed")
    s.store.close()
    peer.drop()
    s2, _ = make()                                          # same store_dir
    assert (s2.next_out, s2.next_in) == (out_before, 4)
    m = peer.logon(s2)
    assert m.get_int(34) == out_before


def test_reset_on_logon_starts_both_sides_at_one(make, peer):
    s, _ = make()
    s.store.set_next_out(40)
    s.store.set_next_in(30)
    s2, _ = make(reset_on_logon=True, store_dir=s.store.base.rsplit("/", 1)[0])
    s._disconnect("replaced")
    m = peer.accept(s2) or peer.expect(s2, b"A")
    assert (m.get_int(34), m.get(141)) == (1, b"Y")
    peer.seq = 1
    peer.send(b"A", [(98, 0), (108, 30), (141, "Y")])
    peer._until(lambda: s2.active, s2, 5)
    assert s2.active and (s2.next_out, s2.next_in) == (2, 2)


def test_mutated_inbound_messages_never_raise_inside_the_session(make, peer):
    import random

    rng = random.Random(99)
    s, app = make()
    peer.logon(s)
    relogons = 0
    for _ in range(150):
        raw = bytearray(peer.build(rng.choice([b"0", b"8", b"1", b"2", b"4", b"3"]),
                                   [(112, "t"), (58, "x"), (7, 1), (16, 0), (36, 5), (45, 1), (11, "1")]))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(raw))
            raw[i] = rng.choice(b"0123456789=\x01AY")
        peer.send_raw(bytes(raw))
        peer._until(lambda: False, s, 0.01)
        if s.state == DISCONNECTED or peer.eof:
            peer.drop()
            s._disconnect("again")
            s._next_connect = 0
            peer.seq = s.next_in
            peer.logon(s)
            relogons += 1
    assert s.stats["errors"] == 0
    assert s.active or s.state == DISCONNECTED
