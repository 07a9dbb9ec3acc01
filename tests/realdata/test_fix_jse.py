"""The JSE FIXT.1.1 market-data receive log: 13,888 messages back to back, framed and checked."""

from __future__ import annotations

import collections

import pytest

from livestack.venues.fix import codec

FILE = "fix/jse-fixt11-marketdata.fix"
# MDIncGrp (FIX 5.0) fields this feed uses; an entry starts at MDUpdateAction (279)
MD_INC_GRP = (279, 285, 55, 48, 22, 269, 270, 271, 273, 272, 58, 83, 451, 346, 290, 336, 625, 326, 286, 278, 280)


@pytest.fixture(scope="module")
def log_bytes(datadir):
    path = datadir / FILE
    if not path.exists():
        pytest.skip(f"{path} missing")
    return path.read_bytes()


def _frame_all(framer_chunks):
    framer = codec.Framer()
    msgs, bad = [], []
    for chunk in framer_chunks:
        framer.feed(chunk)
        for status, data in framer:
            (msgs if status == codec.OK else bad).append(data)
    return msgs, bad, framer


def test_every_message_is_framed_with_a_valid_checksum(log_bytes):
    msgs, bad, framer = _frame_all([log_bytes])
    assert bad == []
    assert framer.buffered() == 0
    assert len(msgs) == 13_888
    assert sum(len(m) for m in msgs) == len(log_bytes)
    for m in msgs:
        # independent check of BodyLength and CheckSum
        head_end = m.index(b"\x0135=") + 1
        body_len = int(m[m.index(b"\x019=") + 3:head_end - 1])
        assert len(m) - 7 - head_end == body_len
        assert int(m[-4:-1]) == sum(m[:-7]) % 256 == codec.checksum(m[:-7])
    types = collections.Counter(codec.parse_message(m).msg_type for m in msgs)
    assert types == {b"X": 11_365, b"0": 2_523}


def test_framing_does_not_depend_on_read_boundaries(log_bytes):
    sizes = [1, 7, 64, 1000, 4096]
    chunks, pos, i = [], 0, 0
    while pos < len(log_bytes):
        k = sizes[i % len(sizes)]
        chunks.append(log_bytes[pos:pos + k])
        pos += k
        i += 1
    msgs, bad, _ = _frame_all(chunks)
    whole, _, _ = _frame_all([log_bytes])
    assert bad == [] and msgs == whole


def test_incremental_refresh_groups_are_read_with_their_counts(log_bytes):
    msgs, _, _ = _frame_all([log_bytes])
    n_refresh = entries = prices = 0
    for raw in msgs:
        m = codec.parse_message(raw)
        if m.msg_type != b"X":
            continue
        n_refresh += 1
        count = m.get_int(268)
        group = m.group(268, 279, MD_INC_GRP)
        assert len(group) == count >= 1
        for entry in group:
            tags = [t for t, _ in entry]
            assert tags[0] == 279 and 55 in tags and 269 in tags
            assert dict(entry)[279] in (b"0", b"1", b"2")
            entries += 1
            if 270 in tags:
                px = dict(entry)[270]
                float(px)  # a decimal
                prices += 1
        # nothing of the group is left outside it: the fields after 268 are exactly the entries
        fields = m.fields()
        i = [t for t, _ in fields].index(268)
        flat = [f for e in group for f in e]
        assert fields[i + 1:i + 1 + len(flat)] == flat
        assert fields[i + 1 + len(flat)][0] == 10
    assert n_refresh == 11_365
    assert entries >= n_refresh and prices > 0


def test_first_refresh_reads_as_recorded(log_bytes):
    msgs, _, _ = _frame_all([log_bytes])
    m = next(codec.parse_message(r) for r in msgs if b"\x0135=X\x01" in r)
    g = m.group(268, 279, MD_INC_GRP)
    assert m.get(1180) == b"JSEFTSEP" and m.get_int(1181) == 82
    assert g[0] == [(279, b"0"), (55, b"JA00"), (269, b"x"), (58, b"LIVE"), (273, b"06:30:00.000"), (83, b"1")]
    assert g[1] == [(279, b"0"), (55, b"JA00"), (269, b"3"), (270, b"76.79"), (451, b"1.03"),
                    (273, b"06:30:00.000"), (83, b"1")]


def test_strict_checks_find_no_fault_in_real_messages(log_bytes):
    """Repeating groups (268 NoMDEntries) repeat their member tags: that is no duplicate."""
    msgs, _, _ = _frame_all([log_bytes])
    assert [m for m in msgs if codec.parse_message(m).violation() is not None] == []


def test_a_broken_message_loses_only_itself(log_bytes):
    import random

    msgs, _, _ = _frame_all([log_bytes])
    rng = random.Random(5)
    stream, intact = [], []
    for i, m in enumerate(msgs):
        if i % 7 == 3:  # one byte changed: CheckSum, BodyLength, a delimiter or a value goes wrong
            b = bytearray(m)
            k = rng.randrange(len(b))
            b[k] = (b[k] + rng.randrange(1, 256)) % 256
            stream.append(bytes(b))
        else:
            stream.append(m)
            intact.append(m)
    blob = b"".join(stream)
    chunks, pos = [], 0
    while pos < len(blob):
        k = rng.choice((1, 7, 64, 1500, 65536))
        chunks.append(blob[pos:pos + k])
        pos += k
    got, _, _ = _frame_all(chunks)
    keep = set(intact)
    assert [m for m in got if m in keep] == intact
