"""FIX codec: BodyLength/CheckSum, framing of a byte stream, parsing, encoding, EXEC decoding.

Where an independent implementation exists it is the judge: QuickFIX parses and validates (data
dictionary on) what our encoder writes, and our decoder reads what QuickFIX writes.
"""

from __future__ import annotations

import sys
import os

import numpy as np
import pytest

from livestack.venues.execid import exec_id_words

from livestack.schema import DTYPES, ExecType, OrdType, Side, TimeInForce
from livestack.venues.fix import codec

NOW = 1_704_067_201_500_000_000  # 2024-01-01 00:00:01.500 UTC


def enc():
    return codec.Encoder("FIX.4.4", "LIVESTACK", "EXCHANGE")


def er(kw=None):
    """An ExecutionReport as the venue would send it (EXCHANGE -> LIVESTACK)."""
    fields = {37: "O1", 11: "42", 17: "E1", 150: "0", 39: "0", 55: "BTCUSDT", 54: "1", 38: "2.000",
              44: "61837.63", 151: "2.000", 14: "0", 6: "0", 60: "20240101-00:00:01.500"}
    fields.update(kw or {})
    fields = [(t, v) for t, v in fields.items() if v is not None]
    return codec.Encoder("FIX.4.4", "EXCHANGE", "LIVESTACK").encode(b"8", 7, NOW, fields)


def decoder():
    d = codec.ExecDecoder()
    d.add_instrument("BTCUSDT", 1, 2, 3)
    return d


# --- BodyLength, CheckSum, encoding ------------------------------------------------------------

def test_encoded_message_has_correct_body_length_and_checksum():
    m = enc().new_order_single(3, NOW, b"42", b"BTCUSDT", Side.BUY, OrdType.LIMIT, TimeInForce.GTC,
                               6183763, 2, 12345, 3)
    assert m.startswith(b"8=FIX.4.4\x019=")
    start = m.index(b"\x0135=") + 1
    assert int(m[12:start - 1]) == len(m) - 7 - start
    assert m.endswith(b"\x01") and m[-7:-4] == b"10=" and int(m[-4:-1]) == sum(m[:-7]) % 256
    assert codec.frame(m) == (codec.OK, len(m))


def test_new_order_single_fields_and_exact_decimals():
    m = codec.parse_message(enc().new_order_single(3, NOW, b"42", b"BTCUSDT", Side.SELL, OrdType.LIMIT,
                                                   TimeInForce.IOC, 6183763, 2, 12345, 3))
    assert [t for t, _ in m.fields()][:8] == [8, 9, 35, 34, 49, 52, 56, 11]
    assert m.msg_type == b"D" and m.get_int(34) == 3
    assert m.get(49) == b"LIVESTACK" and m.get(56) == b"EXCHANGE"
    assert m.get(52) == b"20240101-00:00:01.500" == m.get(60)
    assert (m.get(11), m.get(55), m.get(54), m.get(40), m.get(59)) == (b"42", b"BTCUSDT", b"2", b"2", b"3")
    assert m.get(44) == b"61837.63" and m.get(38) == b"12.345"


def test_post_only_is_gtc_with_participate_dont_initiate_and_market_has_no_price():
    m = codec.parse_message(enc().new_order_single(1, NOW, b"1", b"X", Side.BUY, OrdType.LIMIT,
                                                   TimeInForce.POST_ONLY, 5, 0, 1, 0))
    assert m.get(59) == b"1" and m.get(18) == b"6" and m.get(44) == b"5" and m.get(38) == b"1"
    m = codec.parse_message(enc().new_order_single(1, NOW, b"1", b"X", Side.BUY, OrdType.MARKET,
                                                   TimeInForce.IOC, 0, 2, 1, 0))
    assert m.get(40) == b"1" and not m.has(44)


def test_cancel_and_replace_requests():
    m = codec.parse_message(enc().order_cancel_request(9, NOW, b"42-C9", b"42", b"BTCUSDT", Side.BUY, 2000, 3, b"O1"))
    assert (m.msg_type, m.get(41), m.get(11), m.get(37), m.get(54), m.get(38)) == (b"F", b"42", b"42-C9", b"O1", b"1", b"2.000")
    m = codec.parse_message(enc().order_cancel_replace_request(10, NOW, b"43", b"42", b"BTCUSDT", Side.BUY,
                                                               OrdType.LIMIT, TimeInForce.GTC, -150, 2, 1, 3))
    assert (m.msg_type, m.get(41), m.get(11), m.get(44), m.get(38), m.get(40)) == (b"G", b"42", b"43", b"-1.50", b"0.001", b"2")


@pytest.mark.parametrize("method,args,mt,tags", [
    ("logon", (30, False, "user", "pw"), b"A", {98: b"0", 108: b"30", 553: b"user", 554: b"pw"}),
    ("logon", (5, True), b"A", {141: b"Y", 108: b"5"}),
    ("heartbeat", ("T1",), b"0", {112: b"T1"}),
    ("test_request", ("T2",), b"1", {112: b"T2"}),
    ("resend_request", (5, 0), b"2", {7: b"5", 16: b"0"}),
    ("sequence_reset", (20, True), b"4", {123: b"Y", 36: b"20", 43: b"Y", 122: b"20240101-00:00:01.500"}),
    ("sequence_reset", (20, False), b"4", {36: b"20"}),
    ("logout", ("bye",), b"5", {58: b"bye"}),
    ("reject", (4, 5, 36, b"4", "low"), b"3", {45: b"4", 371: b"36", 372: b"4", 373: b"5", 58: b"low"}),
])
def test_session_messages(method, args, mt, tags):
    raw = getattr(enc(), method)(11, NOW, *args)
    assert codec.frame(raw) == (codec.OK, len(raw))
    m = codec.parse_message(raw)
    assert m.msg_type == mt and m.get_int(34) == 11
    for t, v in tags.items():
        assert m.get(t) == v, t
    if not (method == "sequence_reset" and args[1]):
        assert not m.has(43)


def test_value_with_soh_is_refused():
    with pytest.raises(ValueError):
        enc().encode(b"0", 1, NOW, [(112, b"a\x01b")])


# --- framing ------------------------------------------------------------------------------------

def _three():
    e = enc()
    return [e.heartbeat(i, NOW) for i in (1, 2, 3)]


def test_back_to_back_messages_split_at_every_byte():
    msgs = _three()
    stream = b"".join(msgs)
    f = codec.Framer()
    got = []
    for i in range(len(stream)):
        f.feed(stream[i:i + 1])
        got += list(f)
    assert got == [(codec.OK, m) for m in msgs]


def test_garbage_before_between_and_after_messages_is_skipped():
    a, b, c = _three()
    f = codec.Framer()
    f.feed(b"\x00\xffjunk" + a + b"noise8=FI" + b + b"\x01\x01" + c + b"tail")
    items = list(f)
    assert [d for s, d in items if s == codec.OK] == [a, b, c]
    assert {s for s, _ in items} == {codec.OK, codec.GARBAGE}
    assert f.buffered() <= 4


def test_bad_checksum_drops_only_that_message():
    a, b, c = _three()
    bad = b[:-4] + (b"%03d" % ((int(b[-4:-1]) + 1) % 256)) + b"\x01"
    f = codec.Framer()
    f.feed(a + bad + c)
    assert list(f) == [(codec.OK, a), (codec.BAD_CHECKSUM, bad), (codec.OK, c)]


@pytest.mark.parametrize("wrong", [-10, -1, 1, 10, 100000])
def test_wrong_body_length_resynchronises_on_the_next_message(wrong):
    a, b, c = _three()
    i = b.index(b"\x019=") + 3
    j = b.index(b"\x01", i)
    bad = b[:i] + str(int(b[i:j]) + wrong).encode() + b[j:]
    f = codec.Framer()
    f.feed(a + bad + c)
    items = list(f)
    assert items[0] == (codec.OK, a)
    assert items[-1] == (codec.OK, c)
    assert [s for s, _ in items[1:-1]] and all(s in (codec.BAD_LENGTH, codec.GARBAGE) for s, _ in items[1:-1])


def test_missing_or_non_numeric_body_length():
    a, b, c = _three()
    for bad in (a.replace(b"9=", b"9=x", 1), a.replace(b"\x019=", b"\x0135=", 1)):
        f = codec.Framer()
        f.feed(bad + c)
        items = list(f)
        assert items[-1] == (codec.OK, c) and items[0][0] in (codec.BAD_LENGTH, codec.GARBAGE)


def test_body_length_above_limit_is_refused_without_waiting():
    a, b, c = _three()
    i = a.index(b"\x019=") + 3
    big = a[:i] + b"99999999" + a[a.index(b"\x01", i):]
    f = codec.Framer(max_body=4096)
    f.feed(big + c)
    items = list(f)
    assert items[0][0] == codec.TOO_LONG and items[-1] == (codec.OK, c)


def test_partial_message_waits_for_more():
    a = _three()[0]
    for k in range(1, len(a)):
        assert codec.frame(a[:k]) == (codec.NEED_MORE, 0), k


# --- parsing -------------------------------------------------------------------------------------

def test_parse_rejects_broken_field_structure():
    a = _three()[0]
    for bad in (a.replace(b"35=0", b"35"), a.replace(b"34=1", b"3x4=1")):
        with pytest.raises(codec.FixParseError):
            codec.parse_message(bad)
    with pytest.raises(codec.FixParseError):
        codec.parse_message(b"35=0\x018=FIX.4.4\x019=5\x0110=000\x01")


def test_repeating_group_entries():
    raw = enc().encode(b"X", 1, NOW, [(262, "r"), (268, 3), (279, 0), (269, 0), (270, "1.5"), (279, 1), (269, 1),
                                      (279, 2), (269, 0), (270, "2"), (271, 7), (58, "after")])
    m = codec.parse_message(raw)
    g = m.group(268, 279, (279, 269, 270, 271))
    assert g == [[(279, b"0"), (269, b"0"), (270, b"1.5")], [(279, b"1"), (269, b"1")],
                 [(279, b"2"), (269, b"0"), (270, b"2"), (271, b"7")]]
    assert m.get(58) == b"after"
    bad = codec.parse_message(enc().encode(b"X", 1, NOW, [(268, 3), (279, 0), (269, 0)]))
    with pytest.raises(codec.FixParseError):
        bad.group(268, 279)


def test_time_and_id_helpers():
    assert codec.parse_time(b"20240101-00:00:01.500") == NOW
    assert codec.parse_time(b"20240101-00:00:01") == NOW - 500_000_000
    assert codec.parse_time(b"20240101-00:00:01.500123456") == NOW + 123456
    assert codec.format_time(NOW) == b"20240101-00:00:01.500"
    for bad in (b"2024-01-01", b"20241301-00:00:00", b"20240101-00:00:01.", b"20240101-25:00:00"):
        with pytest.raises(ValueError):
            codec.parse_time(bad)
    assert codec.fix_id(b"12345") == 12345 and codec.fix_id(b"12345-C7") == 12345
    h = codec.fix_id(b"ORD-abc")
    assert h > 0 and h == codec.fix_id(b"ORD-abc") and h != codec.fix_id(b"ORD-abd")


# --- ExecutionReport / OrderCancelReject -> EXEC ------------------------------------------------



@pytest.mark.parametrize("exec_type,ord_status,leaves,want", [
    ("0", "0", "2.000", ExecType.ACCEPTED),
    ("F", "1", "1.500", ExecType.PARTIALLY_FILLED),
    ("F", "2", "0", ExecType.FILLED),
    ("2", "2", "0", ExecType.FILLED),
    ("1", "1", "1", ExecType.PARTIALLY_FILLED),
    ("4", "4", "0", ExecType.CANCELED),
    ("5", "0", "2", ExecType.REPLACED),
    ("8", "8", "0", ExecType.REJECTED),
    ("C", "C", "0", ExecType.EXPIRED),
])
def test_exec_type_and_ord_status_map_to_exec_events(exec_type, ord_status, leaves, want):
    out = np.zeros(1, DTYPES["EXEC"])
    rc, tag = decoder().decode(er({150: exec_type, 39: ord_status, 151: leaves, 32: "0.5", 31: "1"}), out)
    assert (rc, tag) == (codec.DECODED, 0)
    assert out[0]["exec_type"] == want and out[0]["kind"] == 5 and out[0]["instrument"] == 1


@pytest.mark.parametrize("exec_type", ["6", "E", "A", "D"])
def test_pending_reports_make_no_event(exec_type):
    out = np.zeros(1, DTYPES["EXEC"])
    assert decoder().decode(er({150: exec_type}), out)[0] == codec.SKIPPED


@pytest.mark.parametrize("ord_status,reason", [("0", 0), ("1", 0), ("2", 2), ("4", 2), ("8", 1)])
def test_status_reports_are_order_status_events_without_an_exec_id(ord_status, reason):
    """ExecType I answers our OrderStatusRequest (issue 14): ORDER_STATUS, never a fill."""
    out = np.zeros(1, DTYPES["EXEC"])
    assert decoder().decode(er({150: "I", 39: ord_status}), out) == (codec.DECODED, 0)
    assert out[0]["exec_type"] == ExecType.ORDER_STATUS and out[0]["reason"] == reason
    assert out[0]["exec_id"] == 0 and out[0]["exec_id_hi"] == 0


def test_fill_fields_are_exact_fixed_point():
    out = np.zeros(1, DTYPES["EXEC"])
    raw = er({150: "F", 39: "1", 31: "61837.6", 32: "0.500", 14: "0.5", 151: "1.5", 17: "778899"})
    assert decoder().decode(codec.parse_message(raw), out) == (codec.DECODED, 0)
    r = out[0]
    assert (r["last_px"], r["last_qty"], r["cum_qty"], r["leaves_qty"]) == (6183760, 500, 500, 1500)
    assert (r["price"], r["qty"], r["side"]) == (6183763, 2000, Side.BUY)
    assert r["client_order_id"] == 42 and r["venue_order_id"] == codec.order_id_word(b"O1") < 0
    assert (r["exec_id"], r["exec_id_hi"]) == exec_id_words("778899")
    assert r["ts_event"] == NOW


def test_cancel_and_replace_reports_name_the_right_orders():
    out = np.zeros(1, DTYPES["EXEC"])
    decoder().decode(er({150: "4", 39: "4", 11: "42-C9", 41: "42"}), out)
    assert out[0]["client_order_id"] == 42 and out[0]["orig_client_order_id"] == 0
    decoder().decode(er({150: "5", 39: "0", 11: "43", 41: "42"}), out)
    assert out[0]["client_order_id"] == 43 and out[0]["orig_client_order_id"] == 42
    decoder().decode(er({150: "8", 39: "8", 103: "13"}), out)
    assert out[0]["exec_type"] == ExecType.REJECTED and out[0]["reason"] == 13


def test_order_cancel_reject_of_cancel_and_of_replace():
    e = codec.Encoder("FIX.4.4", "EXCHANGE", "LIVESTACK")
    out = np.zeros(1, DTYPES["EXEC"])
    raw = e.encode(b"9", 3, NOW, [(37, "O1"), (11, "42-C5"), (41, "42"), (39, "2"), (434, "1"), (102, "0")])
    assert decoder().decode(raw, out) == (codec.DECODED, 0)
    assert (out[0]["exec_type"], out[0]["client_order_id"], out[0]["orig_client_order_id"]) == (ExecType.CANCEL_REJECTED, 42, 0)
    raw = e.encode(b"9", 3, NOW, [(37, "O1"), (11, "43"), (41, "42"), (39, "0"), (434, "2"), (102, "1")])
    decoder().decode(raw, out)
    assert (out[0]["client_order_id"], out[0]["orig_client_order_id"], out[0]["reason"]) == (43, 42, 1)


def test_missing_fields_bad_values_and_unknown_symbols_are_reported_with_the_tag():
    out = np.zeros(1, DTYPES["EXEC"])
    d = decoder()
    assert d.decode(er({17: None}), out) == (codec.MISSING_FIELD, 17)
    assert d.decode(er({151: None}), out) == (codec.MISSING_FIELD, 151)
    assert d.decode(er({44: "61837.631"}), out) == (codec.BAD_VALUE, 44)  # not exact at 2 decimals
    assert d.decode(er({14: "abc"}), out) == (codec.BAD_VALUE, 14)
    assert d.decode(er({55: "ETHUSDT"}), out) == (codec.UNKNOWN_SYMBOL, 55)
    assert d.decode(enc().heartbeat(1, NOW), out)[0] == codec.NOT_EXEC


def test_decode_stream_frames_checks_and_decodes_in_one_call():
    good = er({150: "F", 39: "2", 151: "0", 14: "2", 31: "1", 32: "2"})
    hb = enc().heartbeat(1, NOW)
    bad = good[:-4] + b"000\x01" if not good.endswith(b"000\x01") else good[:-4] + b"001\x01"
    out = np.zeros(8, DTYPES["EXEC"])
    assert decoder().decode_stream(good + hb + bad + good, out) == (3, 2, 1)
    assert (out["exec_type"][:2] == ExecType.FILLED).all()


# --- QuickFIX as the independent judge ----------------------------------------------------------

def _dd():
    fix = pytest.importorskip("quickfix")
    path = os.path.join(sys.prefix, "share", "quickfix", "FIX44.xml")
    if not os.path.exists(path):
        pytest.skip("quickfix FIX44.xml not found")
    return fix, fix.DataDictionary(path)


def test_quickfix_validation_is_real():
    fix, dd = _dd()
    raw = enc().encode(b"D", 1, NOW, [(11, "1"), (55, "X"), (60, "20240101-00:00:00.000"), (40, "2")])  # no Side
    with pytest.raises(Exception, match="54"):
        dd.validate(fix.Message(raw.decode(), dd, True))


def test_quickfix_validates_what_we_encode():
    fix, dd = _dd()
    e = enc()
    msgs = [
        e.new_order_single(1, NOW, b"42", b"BTCUSDT", Side.BUY, OrdType.LIMIT, TimeInForce.POST_ONLY, 6183763, 2, 12345, 3),
        e.new_order_single(2, NOW, b"43", b"BTCUSDT", Side.SELL, OrdType.MARKET, TimeInForce.IOC, 0, 2, 1, 3),
        e.order_cancel_request(3, NOW, b"42-C3", b"42", b"BTCUSDT", Side.BUY, 12345, 3, b"O1"),
        e.order_cancel_replace_request(4, NOW, b"44", b"42", b"BTCUSDT", Side.BUY, OrdType.LIMIT, TimeInForce.GTC,
                                       6183700, 2, 1000, 3),
        e.logon(5, NOW, 30, True, "u", "p"), e.heartbeat(6, NOW, "T"), e.test_request(7, NOW, "T"),
        e.resend_request(8, NOW, 1, 0), e.sequence_reset(9, NOW, 20, True), e.logout(10, NOW, "bye"),
        e.reject(11, NOW, 3, 5, 36, b"4", "x"),
    ]
    for raw in msgs:
        m = fix.Message(raw.decode(), dd, True)
        dd.validate(m)  # raises on a missing required tag, a bad value, a field out of place
        again = codec.parse_message(m.toString().encode())  # QuickFIX may reorder body fields
        assert sorted(again.fields()) == sorted(codec.parse_message(raw).fields())


def test_we_decode_what_quickfix_encodes():
    fix, dd = _dd()
    m = fix.Message()
    h = m.getHeader()
    for f in (fix.BeginString("FIX.4.4"), fix.MsgType("8"), fix.SenderCompID("EXCHANGE"),
              fix.TargetCompID("LIVESTACK"), fix.MsgSeqNum(9), fix.SendingTime()):
        h.setField(f)
    for tag, v in ((37, "O7"), (11, "42"), (17, "E9"), (150, "F"), (39, "1"), (55, "BTCUSDT"), (54, "2"),
                   (38, "2"), (44, "61837.63"), (32, "0.25"), (31, "61837.5"), (151, "1.75"), (14, "0.25"), (6, "61837.5")):
        m.setField(fix.StringField(tag, v))
    m.setField(fix.TransactTime())
    raw = m.toString().encode()
    assert codec.frame(raw) == (codec.OK, len(raw))
    out = np.zeros(1, DTYPES["EXEC"])
    assert decoder().decode(raw, out) == (codec.DECODED, 0)
    r = out[0]
    assert (r["exec_type"], r["side"], r["last_px"], r["last_qty"], r["leaves_qty"]) == (
        ExecType.PARTIALLY_FILLED, Side.SELL, 6183750, 250, 1750)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1023, 1024, 1025, 4099, 100_000])
def test_checksum_is_the_byte_sum_mod_256_at_any_length(n):
    data = bytes((i * 131 + 7) % 256 for i in range(n))
    assert codec.checksum(data) == sum(data) % 256
    assert codec.checksum(b"\xff" * n) == (255 * n) % 256


def test_mutated_streams_never_crash_the_framer_parser_or_decoder():
    import random

    rng = random.Random(1234)
    e = codec.Encoder("FIX.4.4", "EXCHANGE", "LIVESTACK")
    good = b"".join([er({150: "F", 39: "1", 31: "1.5", 32: "0.5", 151: "1.5", 14: "0.5"}), e.heartbeat(2, NOW),
                     e.test_request(3, NOW, "x"), er()])
    d = decoder()
    out = np.zeros(4, DTYPES["EXEC"])
    for _ in range(3000):
        b = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            op = rng.random()
            i = rng.randrange(len(b))
            if op < 0.5:
                b[i] = rng.choice(b"0123456789=\x01X8|")
            elif op < 0.75:
                del b[i:i + rng.randint(1, 8)]
            else:
                b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        f = codec.Framer()
        pos = 0
        while pos < len(b):
            k = rng.randint(1, 64)
            f.feed(bytes(b[pos:pos + k]))
            pos += k
            for status, raw in f:
                if status != codec.OK:
                    continue
                try:
                    m = codec.parse_message(raw)
                except codec.FixParseError:
                    continue
                d.decode(m, out, 0)
        d.decode_stream(bytes(b), out)


# --- per-version required fields (issue 14) ----------------------------------------------------
@pytest.mark.parametrize("begin,want", [("FIX.4.2", b"1"), ("FIX.4.3", b"1"), ("FIX.4.4", None)])
def test_handl_inst_is_written_where_the_version_requires_it(begin, want):
    e = codec.Encoder(begin, "LIVESTACK", "EXCHANGE")
    d = codec.parse_message(e.new_order_single(1, NOW, b"1", b"X", Side.BUY, OrdType.LIMIT, TimeInForce.GTC,
                                               100, 2, 1000, 3))
    g = codec.parse_message(e.order_cancel_replace_request(2, NOW, b"2", b"1", b"X", Side.BUY, OrdType.LIMIT,
                                                           TimeInForce.GTC, 100, 2, 1000, 3))
    f = codec.parse_message(e.order_cancel_request(3, NOW, b"3", b"1", b"X", Side.BUY, 1000, 3))
    assert (d.get(21), g.get(21), f.get(21)) == (want, want, None)
    assert codec.Encoder(begin, "A", "B", handl_inst="").handl_inst_value == b""
    assert codec.Encoder("FIX.4.4", "A", "B", handl_inst="2").handl_inst_value == b"2"
    with pytest.raises(ValueError, match="HandlInst"):
        codec.Encoder(begin, "A", "B", handl_inst="9")


@pytest.mark.parametrize("tif,want", [(TimeInForce.GTC, b"1"), (TimeInForce.IOC, b"3"), (TimeInForce.DAY, b"0")])
def test_time_in_force_map_includes_day(tif, want):
    m = codec.parse_message(enc().new_order_single(1, NOW, b"1", b"X", Side.BUY, OrdType.LIMIT, tif, 100, 2, 1, 3))
    assert m.get(59) == want and not m.has(18)
    assert int(TimeInForce.DAY) == 4 and int(TimeInForce.POST_ONLY) == 3   # appended, nothing renumbered
