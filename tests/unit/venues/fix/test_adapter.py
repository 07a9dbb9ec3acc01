"""FixAdapter against a scripted venue: rejects at every level become execution events, malformed
execution reports are rejected the FIX way, and no order command is ever lost silently."""

from __future__ import annotations

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.schema import DTYPES, spec, ExecType, OrderCmdType, OrdType, Side, TimeInForce
from livestack.venues.fix import adapter as fa
from livestack.venues.fix.adapter import FixAdapter

from .peer import Peer

BTC = Instrument(1, "BTCUSDT", "fix", price_decimals=2, qty_decimals=3)


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.close()


@pytest.fixture
def ad(tmp_path, peer):
    a = FixAdapter([BTC], dict(port=peer.port, sender_comp_id="LIVESTACK", target_comp_id="EXCHANGE",
                               store_dir=str(tmp_path / "store"), reconnect_min_s=0.05))
    a.out = np.zeros(16, DTYPES["EXEC"])
    a.got = []
    yield a
    a.session._disconnect("teardown")
    a.session.store.close()


def pump(a):
    n = a.poll(a.out, 0)
    a.got.extend(a.out[:n].copy())


def wait_events(a, peer, n):
    peer._until(lambda: (pump(a), len(a.got) >= n)[1], None, 5)
    assert len(a.got) >= n, a.got
    return a.got[n - 1]


def cmd(a, kind, cid, price=100, qty=1000, side=Side.BUY, orig=0, instrument=1):
    c = np.zeros(1, DTYPES["ORDER_CMD"])
    c["kind"], c["instrument"], c["client_order_id"], c["orig_client_order_id"] = 6, instrument, cid, orig
    c["price"], c["qty"], c["cmd"], c["side"] = price, qty, kind, side
    c["tif"], c["ord_type"] = TimeInForce.GTC, OrdType.LIMIT
    a.submit(c)


def logon(a, peer):
    a.start()
    peer.logon(a.session)


def test_commands_wait_for_the_logon_then_go_out_in_order(ad, peer):
    cmd(ad, OrderCmdType.NEW, 1)
    cmd(ad, OrderCmdType.NEW, 2)
    assert len(ad.pending) == 2
    logon(ad, peer)
    d1, d2 = peer.expect(ad.session, b"D"), peer.expect(ad.session, b"D")
    assert (d1.get(11), d2.get(11)) == (b"1", b"2") and not ad.pending


def test_session_reject_of_an_order_is_a_rejected_event(ad, peer):
    logon(ad, peer)
    cmd(ad, OrderCmdType.NEW, 5)
    d = peer.expect(ad.session, b"D")
    peer.send(b"3", [(45, d.get_int(34)), (371, 44), (373, 5)])
    e = wait_events(ad, peer, 1)
    assert (e["exec_type"], e["client_order_id"], e["reason"], e["instrument"]) == (
        ExecType.REJECTED, 5, fa.SESSION_REJECT_BASE + 5, 1)


def test_business_message_reject_of_a_cancel_is_a_cancel_rejected_event(ad, peer):
    logon(ad, peer)
    cmd(ad, OrderCmdType.CANCEL, 6)
    f = peer.expect(ad.session, b"F")
    peer.send(b"j", [(45, f.get_int(34)), (372, "F"), (380, 4)])
    e = wait_events(ad, peer, 1)
    assert (e["exec_type"], e["client_order_id"], e["reason"]) == (ExecType.CANCEL_REJECTED, 6, fa.BUSINESS_REJECT_BASE + 4)


@pytest.mark.parametrize("change,tag,reason", [
    ({17: None}, 17, 1),                # ExecID missing: required tag missing
    ({17: ""}, 17, 4),                  # ExecID empty: tag specified without a value
    ({17: "E\x021"}, 17, 6),            # ExecID with a control byte: incorrect data format
    ({44: "100.001"}, 44, 6),           # not exact at 2 decimals: incorrect data format
    ({151: "-1"}, 151, 5),              # negative LeavesQty: value incorrect
    ({38: "0"}, 38, 5),                 # OrderQty must be > 0
    ({54: "12"}, 54, 5),                # Side is one character, not its first byte
    ({150: "Z"}, 150, 5),               # no such ExecType
    ({39: "Q"}, 39, 5),                 # no such OrdStatus
])
def test_malformed_execution_report_is_rejected_and_makes_no_event(ad, peer, change, tag, reason):
    logon(ad, peer)
    fields = {37: "O1", 11: "9", 17: "E1", 150: "0", 39: "0", 55: "BTCUSDT", 54: "1", 38: "1", 44: "1.00",
              151: "1", 14: "0", 6: "0"}
    fields.update(change)
    peer.send(b"8", [(t, v) for t, v in fields.items() if v is not None])
    rj = peer.expect(ad.session, b"3")
    assert (rj.get_int(371), rj.get_int(373), rj.get(372), rj.get_int(45)) == (tag, reason, b"8", 2)
    pump(ad)
    assert ad.got == [] and ad.session.active and ad.session.next_in == 3
    assert sum(ad.session.rejects_by_reason.values()) == ad.session.stats["rejects_out"] == 1


def test_duplicate_tag_is_a_session_reject_not_the_first_value(ad, peer):
    logon(ad, peer)
    peer.send(b"8", [(37, "O1"), (11, "9"), (17, "E1"), (150, "F"), (39, "1"), (55, "BTCUSDT"), (54, "1"),
                     (32, "1"), (31, "1.00"), (32, "5"), (151, "1"), (14, "1"), (6, "1")])
    rj = peer.expect(ad.session, b"3")
    assert (rj.get_int(371), rj.get_int(373)) == (32, 13)
    pump(ad)
    assert ad.got == [] and ad.session.rejects_by_reason == {"session.tag_appears_more_than_once": 1}


@pytest.mark.parametrize("change,drop,reason", [
    ({55: "ETHUSDT"}, None, 2),         # not our symbol: BusinessMessageReject unknown security
    ({150: "F", 39: "1"}, 32, 5),       # a trade without LastQty: conditionally required field missing
])
def test_business_level_faults_get_a_business_message_reject(ad, peer, change, drop, reason):
    logon(ad, peer)
    fields = {37: "O1", 11: "9", 17: "E1", 150: "0", 39: "0", 55: "BTCUSDT", 54: "1", 38: "1", 44: "1.00",
              32: "1", 31: "1.00", 151: "1", 14: "0", 6: "0"}
    fields.update(change)
    fields.pop(drop, None)
    peer.send(b"8", list(fields.items()))
    bj = peer.expect(ad.session, b"j")
    assert (bj.get_int(380), bj.get_int(45), bj.get(372), bj.get(379)) == (reason, 2, b"8", b"E1")
    pump(ad)
    assert ad.got == [] and ad.session.active


def test_partial_fills_with_exec_ids_sharing_digits_are_two_fills(ad, peer):
    """"777-1" and "777-2" were both exec id 777 (and "00777" too): the core dropped the second."""
    from livestack.venues.execid import exec_id_words

    logon(ad, peer)
    cmd(ad, OrderCmdType.NEW, 9, qty=3000)
    peer.expect(ad.session, b"D")
    for k, (x, leaves, cum) in enumerate((("777-1", "2", "1"), ("777-2", "1", "2"), ("00777", "0", "3"))):
        peer.send(b"8", [(37, "777"), (11, "9"), (17, x), (150, "F"), (39, "1" if k < 2 else "2"), (55, "BTCUSDT"),
                         (54, "1"), (38, "3"), (44, "1.00"), (32, "1"), (31, "1.00"), (151, leaves), (14, cum),
                         (6, "1.00")])
    wait_events(ad, peer, 3)
    ids = [(int(e["exec_id"]), int(e["exec_id_hi"])) for e in ad.got]
    assert ids == [exec_id_words(x) for x in ("777-1", "777-2", "00777")] and len(set(ids)) == 3
    assert [int(e["venue_order_id"]) for e in ad.got] == [777] * 3
    assert [int(e["version"]) for e in ad.got] == [spec.RECORDS_BY_NAME["EXEC"].version] * 3


def test_unknown_instrument_and_unknown_order_are_rejected_locally(ad, peer):
    logon(ad, peer)
    cmd(ad, OrderCmdType.NEW, 7, instrument=9)
    cmd(ad, OrderCmdType.REPLACE, 8, orig=77, side=Side.NONE)
    a, b = wait_events(ad, peer, 2), ad.got[0]
    assert (b["exec_type"], b["client_order_id"], b["reason"]) == (ExecType.REJECTED, 7, fa.UNKNOWN_INSTRUMENT)
    assert (a["exec_type"], a["client_order_id"], a["orig_client_order_id"], a["reason"]) == (
        ExecType.CANCEL_REJECTED, 8, 77, fa.UNKNOWN_ORDER)
    assert peer.nothing_of(ad.session, b"D") and peer.nothing_of(ad.session, b"G")


def test_gap_filled_cancel_is_reported_not_delivered(ad, peer):
    logon(ad, peer)
    cmd(ad, OrderCmdType.NEW, 10)
    cmd(ad, OrderCmdType.CANCEL, 10)
    peer.expect(ad.session, b"D")
    f = peer.expect(ad.session, b"F")
    peer.send(b"2", [(7, f.get_int(34)), (16, 0)])
    e = wait_events(ad, peer, 1)
    assert (e["exec_type"], e["client_order_id"], e["reason"]) == (ExecType.CANCEL_REJECTED, 10, fa.NOT_DELIVERED)
    assert peer.expect(ad.session, b"4").get(123) == b"Y"


def test_pending_new_report_teaches_the_order_id_used_by_the_cancel(ad, peer):
    logon(ad, peer)
    cmd(ad, OrderCmdType.NEW, 11)
    peer.expect(ad.session, b"D")
    peer.send(b"8", [(37, "VENUE-77"), (11, "11"), (17, "E1"), (150, "A"), (39, "A"), (55, "BTCUSDT"), (54, "1"),
                     (151, "1"), (14, "0"), (6, "0")])
    peer._until(lambda: ad.session.next_in == 3, ad.session, 5)
    pump(ad)
    assert ad.got == []
    cmd(ad, OrderCmdType.CANCEL, 11)
    f = peer.expect(ad.session, b"F")
    assert (f.get(37), f.get(41), f.get(11)) == (b"VENUE-77", b"11", b"11-C%d" % f.get_int(34))


def test_harness_loss_cancels_every_live_order(ad, peer):
    logon(ad, peer)
    for cid in (20, 21):
        cmd(ad, OrderCmdType.NEW, cid, side=Side.SELL)
    peer.expect(ad.session, b"D")
    peer.expect(ad.session, b"D")
    ad.on_harness_lost()
    c1, c2 = peer.expect(ad.session, b"F"), peer.expect(ad.session, b"F")
    assert {c1.get(41), c2.get(41)} == {b"20", b"21"} and c1.get(54) == b"2"


def test_cancel_after_a_venue_process_restart_finds_the_side_in_the_journal(tmp_path, peer):
    opts = dict(port=peer.port, sender_comp_id="LIVESTACK", target_comp_id="EXCHANGE",
                store_dir=str(tmp_path / "store"), reconnect_min_s=0.05)
    a = FixAdapter([BTC], opts)
    a.start()
    peer.logon(a.session)
    cmd(a, OrderCmdType.NEW, 30, side=Side.SELL)
    peer.expect(a.session, b"D")
    a.session._disconnect("killed")
    a.session.store.close()
    peer.drop()
    b = FixAdapter([BTC], opts)                             # the restarted process: no order table
    b.out, b.got = np.zeros(4, DTYPES["EXEC"]), []
    try:
        b.start()
        peer.logon(b.session)
        cmd(b, OrderCmdType.CANCEL, 30, side=Side.NONE)
        f = peer.expect(b.session, b"F")
        assert (f.get(41), f.get(54)) == (b"30", b"2")
    finally:
        b.session._disconnect("teardown")
        b.session.store.close()


def test_new_without_a_side_is_rejected_locally(ad, peer):
    logon(ad, peer)
    cmd(ad, OrderCmdType.NEW, 40, side=Side.NONE)
    e = wait_events(ad, peer, 1)
    assert (e["exec_type"], e["client_order_id"], e["reason"]) == (ExecType.REJECTED, 40, fa.BAD_COMMAND)
    assert peer.nothing_of(ad.session, b"D")


def test_events_and_commands_take_kind_and_version_from_the_schema(ad, peer):
    """Layouts declared once: no record kind or version restated by hand in the adapter."""
    import inspect
    import re

    from livestack.schema import RecordKind

    src = inspect.getsource(fa)
    assert not re.search(r'\[\s*"(kind|version)"\s*\]\s*=\s*\d', src)
    logon(ad, peer)
    cmd(ad, OrderCmdType.NEW, 7, instrument=9)               # a local reject: an EXEC built here
    e = wait_events(ad, peer, 1)
    assert (int(e["kind"]), int(e["version"])) == (RecordKind.EXEC, spec.RECORDS_BY_NAME["EXEC"].version)


def test_the_quickfix_exchange_is_a_test_stand_in_outside_the_product_package():
    import importlib
    import importlib.util

    assert importlib.util.find_spec("livestack.venues.fix.exchange") is None
    fx = importlib.import_module("livestack.testing.fix_exchange")
    assert "Test stand-in for a FIX venue" in fx.__doc__ and hasattr(fx, "ExchangeProcess")


def test_an_exec_id_whose_identity_another_string_had_is_refused(ad, peer):
    """A 128-bit collision cannot be made on purpose: plant one in the adapter's kept strings."""
    from livestack.venues.execid import exec_id_words

    logon(ad, peer)
    ad._exec_ids[exec_id_words("E9")] = b"some other id"
    peer.send(b"8", [(37, "O1"), (11, "9"), (17, "E9"), (150, "0"), (39, "0"), (55, "BTCUSDT"), (54, "1"), (38, "1"),
                     (151, "1"), (14, "0"), (6, "0")])
    bj = peer.expect(ad.session, b"j")
    assert (bj.get_int(380), bj.get(379)) == (1, b"E9")
    pump(ad)
    assert ad.got == [] and ad.stats["exec_id_collisions"] == 1


def test_reject_storm_is_counted_and_clears_when_the_window_drains(tmp_path, peer):
    from .peer import FakeClock
    clock = FakeClock()
    a = FixAdapter([BTC], dict(port=peer.port, sender_comp_id="LIVESTACK", target_comp_id="EXCHANGE",
                               store_dir=str(tmp_path / "store"), reconnect_min_s=0.05,
                               reject_storm_count=3, reject_storm_window_s=10))
    a.session.mono = clock
    a.out, a.got = np.zeros(16, DTYPES["EXEC"]), []
    try:
        logon(a, peer)
        for k in range(4):
            cmd(a, OrderCmdType.NEW, 10 + k)
            d = peer.expect(a.session, b"D")
            peer.send(b"8", [(37, "NONE"), (11, d.get(11)), (17, f"R{k}"), (150, "8"), (39, "8"), (55, "BTCUSDT"),
                             (54, "1"), (38, "1.000"), (151, "0"), (14, "0"), (6, "0"), (103, 1)])
            wait_events(a, peer, k + 1)
            clock.advance(1.0)
            if k == 1:
                assert (a.stats["rejects"], a.stats["reject_storms"], a.stats["reject_storm_active"]) == (2, 0, 0)
        assert (a.stats["rejects"], a.stats["reject_storms"], a.stats["reject_storm_active"]) == (4, 1, 1)
        clock.advance(20)
        pump(a)
        assert (a.stats["reject_storms"], a.stats["reject_storm_active"]) == (1, 0)
        with pytest.raises(ValueError, match="reject_storm"):
            FixAdapter([BTC], dict(store_dir=str(tmp_path / "s2"), reject_storm_count=0))
    finally:
        a.session._disconnect("teardown")
        a.session.store.close()
