"""Strict FIX inbound: venue ids keep their identity, malformed ExecutionReports are refused with the
FIX reason, and framing never loses the valid message behind a broken one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestack.schema import DTYPES, RecordKind, spec
from livestack.venues import execid
from livestack.venues.fix import codec

from .test_codec import NOW, decoder, er

# ExecID / OrderID values a venue may send: any text without the SOH delimiter or control bytes
ids = st.text(st.characters(min_codepoint=0x20, blacklist_characters="\x7f", blacklist_categories=("Cs",)),
              min_size=1, max_size=80)


def decode(raw):
    out = np.zeros(1, DTYPES["EXEC"])
    rc, tag = decoder().decode(raw, out)
    return rc, tag, out[0]


# --- exec and order ids ------------------------------------------------------------------------

def test_c_exec_id_words_equal_the_execid_module_for_many_strings():
    rng = np.random.default_rng(7)
    cases = ["777-1", "777-2", "00777", "777", "E1", "x" * 127, "y" * 128, "z" * 129, "w" * 1000, "ä€𝄞"]
    cases += ["".join(chr(c) for c in rng.integers(0x20, 0x7f, rng.integers(1, 300))) for _ in range(2000)]
    for s in cases:
        b = s.encode()
        assert codec.exec_id_words(b) == execid.exec_id_words(s) == execid.exec_id_words(b), s


@settings(max_examples=300, deadline=None)
@given(ids)
def test_c_exec_id_words_equal_the_execid_module_for_any_id(s):
    assert codec.exec_id_words(s.encode()) == execid.exec_id_words(s)


@settings(max_examples=300, deadline=None)
@given(ids, ids)
def test_two_distinct_exec_ids_are_two_identities_through_the_decoder(a, b):
    if a == b:
        return
    ra = decode(er({150: "F", 39: "1", 32: "1", 31: "1", 17: a.encode()}))
    rb = decode(er({150: "F", 39: "1", 32: "1", 31: "1", 17: b.encode()}))
    assert ra[:2] == rb[:2] == (codec.DECODED, 0)
    wa = (int(ra[2]["exec_id"]), int(ra[2]["exec_id_hi"]))
    wb = (int(rb[2]["exec_id"]), int(rb[2]["exec_id_hi"]))
    assert wa != wb and wa == execid.exec_id_words(a) and wb == execid.exec_id_words(b)


def test_exec_ids_sharing_digits_stay_distinct():
    words = {decode(er({17: x}))[2]["exec_id"] for x in ("777-1", "777-2", "00777", "777")}
    assert len(words) == 4


@settings(max_examples=300, deadline=None)
@given(ids, ids)
def test_two_distinct_order_ids_are_two_venue_order_ids(a, b):
    if a == b:
        return
    wa, wb = codec.order_id_word(a.encode()), codec.order_id_word(b.encode())
    assert wa != wb and wa != 0 and wb != 0
    assert decode(er({37: a.encode()}))[2]["venue_order_id"] == wa


def test_numeric_order_ids_stay_readable_and_others_cannot_collide_with_them():
    assert codec.order_id_word(b"12345") == 12345
    for s in (b"00777", b"777-1", b"0", b"O1", b"1234567890123456789"):
        assert codec.order_id_word(s) < 0, s
    assert len({codec.order_id_word(s) for s in (b"777", b"00777", b"777-1", b"777-2")}) == 4


@pytest.mark.parametrize("bad", [b"", b"E\x011", b"\x00", b"A\x1fB", b"\x7f"])
def test_empty_or_control_byte_ids_are_not_ids(bad):
    with pytest.raises(ValueError):
        codec.exec_id_words(bad)
    with pytest.raises(ValueError):
        codec.order_id_word(bad)


def test_exec_records_carry_the_schema_kind_and_version():
    r = decode(er())[2]
    assert (r["kind"], r["version"]) == (RecordKind.EXEC, spec.RECORDS_BY_NAME["EXEC"].version)


# --- refusals: every one names the reason FIX gives and the tag ------------------------------

FILL = {150: "F", 39: "1", 32: "0.500", 31: "61837.60", 14: "0.5", 151: "1.5"}


@pytest.mark.parametrize("change,code,tag", [
    ({17: ""}, codec.EMPTY_VALUE, 17),
    ({58: ""}, codec.EMPTY_VALUE, 58),
    ({17: "E\x021"}, codec.BAD_VALUE, 17),
    ({37: "O\x1f1"}, codec.BAD_VALUE, 37),
    ({6: None}, codec.MISSING_FIELD, 6),
    ({54: None}, codec.MISSING_FIELD, 54),
    ({38: "0"}, codec.VALUE_INCORRECT, 38),
    ({38: "-2"}, codec.VALUE_INCORRECT, 38),
    ({151: "-1"}, codec.VALUE_INCORRECT, 151),
    ({14: "-0.5"}, codec.VALUE_INCORRECT, 14),
    ({44: "-1.00"}, codec.VALUE_INCORRECT, 44),
    ({6: "-3"}, codec.VALUE_INCORRECT, 6),
    ({6: "x"}, codec.BAD_VALUE, 6),
    ({**FILL, 32: "-0.5"}, codec.VALUE_INCORRECT, 32),
    ({**FILL, 32: "0"}, codec.VALUE_INCORRECT, 32),
    ({**FILL, 31: "-5"}, codec.VALUE_INCORRECT, 31),
    ({**FILL, 32: None}, codec.COND_MISSING, 32),
    ({**FILL, 31: None}, codec.COND_MISSING, 31),
    ({54: "12"}, codec.VALUE_INCORRECT, 54),
    ({54: "7"}, codec.VALUE_INCORRECT, 54),
    ({54: "X"}, codec.VALUE_INCORRECT, 54),
    ({150: "Z"}, codec.VALUE_INCORRECT, 150),
    ({150: "00"}, codec.VALUE_INCORRECT, 150),
    ({39: "Z"}, codec.VALUE_INCORRECT, 39),
    ({60: "2024-01-01"}, codec.BAD_VALUE, 60),
    ({55: "ETHUSDT"}, codec.UNKNOWN_SYMBOL, 55),
])
def test_malformed_execution_reports_are_refused_with_reason_and_tag(change, code, tag):
    assert decode(er(change))[:2] == (code, tag)


def test_a_rejected_report_may_echo_a_zero_order_qty():
    rc, tag, r = decode(er({150: "8", 39: "8", 38: "0", 103: "13"}))
    assert (rc, tag, r["qty"], r["reason"]) == (codec.DECODED, 0, 0, 13)
    assert decode(er({150: "8", 39: "8", 38: "-1"}))[:2] == (codec.VALUE_INCORRECT, 38)


def test_a_repeated_tag_is_refused_wherever_it_repeats():
    e = codec.Encoder("FIX.4.4", "EXCHANGE", "LIVESTACK")
    base = [(37, "O1"), (11, "42"), (17, "E1"), (150, "F"), (39, "1"), (55, "BTCUSDT"), (54, "1"), (38, "2"),
            (32, "1"), (31, "1.00"), (151, "1"), (14, "1"), (6, "1")]
    for i, (t, v) in enumerate(base):
        for pos in (i + 1, len(base)):
            raw = e.encode(b"8", 2, NOW, base[:pos] + [(t, v)] + base[pos:])
            assert decode(raw)[:2] == (codec.DUPLICATE_TAG, t)
            assert codec.parse_message(raw).violation() == (13, t)
    raw = e.encode(b"8", 2, NOW, base + [(34, "9")])  # a header field again, in the body
    assert decode(raw)[:2] == (codec.DUPLICATE_TAG, 34)


def test_repeating_group_members_are_not_duplicates():
    raw = er({150: "F", 39: "1", 32: "1", 31: "1", 382: "2"})
    raw = raw.replace(b"\x01382=2\x01", b"\x01382=2\x01375=A\x01337=T1\x01375=B\x01337=T2\x01")
    raw = codec.Encoder("FIX.4.4", "EXCHANGE", "LIVESTACK").encode(
        b"8", 2, NOW, [f for f in codec.parse_message(raw).fields() if f[0] not in (8, 9, 10, 35, 34, 49, 52, 56)])
    assert codec.parse_message(raw).violation() is None
    assert decode(raw)[:2] == (codec.DECODED, 0)


def test_every_refusal_has_a_fix_answer():
    assert set(codec.REJECTS) == {codec.MISSING_FIELD, codec.EMPTY_VALUE, codec.VALUE_INCORRECT, codec.BAD_VALUE,
                                  codec.DUPLICATE_TAG, codec.UNKNOWN_SYMBOL, codec.COND_MISSING}
    assert {(k, r) for k, r, _ in codec.REJECTS.values()} == {
        ("session", 1), ("session", 4), ("session", 5), ("session", 6), ("session", 13), ("business", 2),
        ("business", 5)}


# --- framing recovers at the next message ------------------------------------------------------

def _frames(stream, chunk=None):
    fr = codec.Framer()
    oks = []
    for k in range(0, len(stream), chunk or len(stream)):
        fr.feed(stream[k:k + (chunk or len(stream))])
        oks += [d for s, d in fr if s == codec.OK]
    return oks


def _with_body_length(m, n):
    i = m.index(b"\x019=") + 3
    return m[:i] + str(n).encode() + m[m.index(b"\x01", i):]


def test_a_too_long_body_length_does_not_swallow_the_message_that_reaches_its_end():
    a, b = er({17: "A"}), er({17: "B"})
    # BodyLength of a made to end exactly where b's checksum field starts: the frame "checks" to b's
    # trailer, the sum is wrong -- the old framer dropped a and b together
    start = a.index(b"\x0135=") + 1
    bad = _with_body_length(a, len(a) - start + len(b) - 7)
    bad = _with_body_length(a, len(bad) - start + len(b) - 7)
    assert _frames(bad + b) == [b]


@pytest.mark.parametrize("chunk", [None, 1, 50])
def test_a_broken_message_with_a_huge_body_length_does_not_hold_back_the_next(chunk):
    a, b, c = er({17: "A"}), er({17: "B"}), er({17: "C"})
    bad = _with_body_length(a, 900_000)[:-7]  # no trailer either: nothing marks where it ends
    assert _frames(bad + b + c, chunk) == [b, c]


def test_a_message_start_without_a_body_does_not_hold_back_the_next():
    b = er({17: "B"})
    assert _frames(b"8=FIX.4.4\x019=4000\x0135=8\x01" + b) == [b]
