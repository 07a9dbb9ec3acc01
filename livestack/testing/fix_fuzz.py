"""A seeded fuzzer of the FIX inbound path: framing (``codec.Framer``), parsing
(``codec.parse_message`` and ``FixMessage.violation``) and ExecutionReport decoding
(``codec.ExecDecoder``). Test stand-in for a hostile or broken counterparty: it is not a FIX engine,
it writes the bytes a broken one could send, and knows what the stack must make of each.

Every case is a byte stream ``before + M + after1 + after2`` fed to a Framer in random read sizes,
where ``before``/``after*`` are valid ExecutionReports and ``M`` is one of:

* ``valid``     -- a valid ExecutionReport (ids like ``"777-1"``, ``"00777"``, repeating groups);
                   it must be accepted and its exec id words must equal
                   ``livestack.venues.execid.exec_id_words`` of its ExecID;
* ``semantic``  -- a well-framed message with one planted fault (duplicate tag, empty value,
                   missing required tag, negative or zero quantity, unknown Side/ExecType/OrdStatus,
                   malformed number or ExecID, unknown symbol, trade without LastQty/LastPx); it
                   must be refused with exactly the planted reason and tag;
* ``bytes``     -- ``M`` with its bytes broken (BodyLength, CheckSum, flipped/inserted/deleted
                   bytes, truncation, stray ``8=FIX`` starts, garbage); whatever becomes of ``M``,
                   ``before``, ``after1`` and ``after2`` must come out whole and in order.

Nothing may raise. :func:`run` returns the counts (``lost`` and ``wrong_verdict`` and ``crashes``
must be 0); ``bench/fuzz_fix.py`` runs >= 100k cases, ``tests/unit/venues/fix/test_fuzz.py`` a
short seeded run.
"""

from __future__ import annotations

import collections
import random

import numpy as np

from livestack.schema import DTYPES
from livestack.venues import execid
from livestack.venues.fix import codec

SYMBOL = "BTCUSDT"
T0 = 1_704_067_201_500_000_000

_ID_SHAPES = ("{n}", "{n}-{k}", "00{n}", "E{n}", "{n}-{k}-X", "x{n}.{k}", "{n} {k}", "ä{n}")


def _id(rng: random.Random) -> str:
    return rng.choice(_ID_SHAPES).format(n=rng.randint(1, 10**rng.randint(1, 12)), k=rng.randint(1, 99))


def _qty(rng: random.Random, lo: int = 1) -> str:
    return f"{rng.randint(lo, 50_000) / 1000:.3f}"


def valid_er(rng: random.Random) -> list[tuple[int, str]]:
    """A valid ExecutionReport body (fields after the header) that ExecDecoder decodes."""
    kind = rng.choice(("new", "partial", "fill", "canceled", "replaced", "rejected", "pending"))
    et, st = {"new": ("0", "0"), "partial": ("F", "1"), "fill": ("F", "2"), "canceled": ("4", "4"),
              "replaced": ("5", "0"), "rejected": ("8", "8"), "pending": ("6", "6")}[kind]
    qty = _qty(rng)
    f = [(37, _id(rng)), (11, str(rng.randint(1, 10**12))), (17, _id(rng)), (150, et), (39, st), (55, SYMBOL),
         (54, rng.choice("123456")), (38, qty), (44, f"{rng.randint(1, 10**8) / 100:.2f}")]
    if kind in ("canceled", "replaced"):
        f.append((41, str(rng.randint(1, 10**12))))
    if kind in ("partial", "fill"):
        f += [(32, _qty(rng)), (31, f"{rng.randint(1, 10**8) / 100:.2f}")]
    if kind == "rejected":
        f.append((103, str(rng.randint(0, 99))))
    if rng.random() < 0.2:  # a repeating group: its member tags repeat legitimately
        f += [(382, "2"), (375, "BRK1"), (337, "T1"), (375, "BRK2"), (337, "T2")]
    f += [(151, "0" if kind == "fill" else qty), (14, "0" if kind in ("new", "pending") else qty),
          (6, f"{rng.randint(0, 10**8) / 100:.2f}"), (60, "20240101-00:00:01.500")]
    if rng.random() < 0.2:
        f.append((58, "free text 8=FIX not a start"))
    return f


# (name, reason code, how to plant it): each returns the new field list and the offending tag
# the tags ExecDecoder reads: a second one is refused wherever it is; any other tag only before the
# first NumInGroup field (after it, without a data dictionary, it may be a group member)
_DECODER_TAGS = {11, 41, 37, 17, 150, 39, 54, 55, 44, 38, 31, 32, 14, 151, 60, 103, 102, 434, 6}


def _dup(rng, f):
    groups = [k for k, (g, _) in enumerate(f) if codec.is_group_counter(g)]
    first_group = groups[0] if groups else len(f)
    i = rng.choice([k for k, (t, _) in enumerate(f) if t in _DECODER_TAGS or k < first_group])
    t, v = f[i]
    last = len(f) if t in _DECODER_TAGS else first_group
    f = f[:]
    f.insert(rng.randint(i + 1, last), (t, rng.choice((v, v + "1", "2"))))
    return f, t


def _empty(rng, f):
    i = rng.randrange(len(f))
    f = f[:]
    f[i] = (f[i][0], "")
    return f, f[i][0]


_REQUIRED = (37, 17, 150, 39, 54, 55, 151, 14, 6, 11)


def _missing(rng, f):
    t = rng.choice(_REQUIRED)
    return [x for x in f if x[0] != t], t


def _negative(rng, f):
    present = [t for t, _ in f if t in (151, 14, 32, 44, 31, 6)]
    t = rng.choice(present)
    return [(k, "-" + v.lstrip("-") if k == t else v) for k, v in f], t


def _order_qty(rng, f):
    rejected = dict(f)[150] == "8"  # a Rejected report may echo a quantity of 0 (the reason it was rejected)
    bad = ("-1", "-0.001") if rejected else ("0", "-1", "0.000", "-0.001")
    return [(k, rng.choice(bad) if k == 38 else v) for k, v in f], 38


def _enum(rng, f):
    t = rng.choice((54, 150, 39))
    bad = {54: "789ABCDEFGXZ0", 150: "JKXYZ!a", 39: "FGXZ!a"}[t]
    v = rng.choice((rng.choice(bad), "11", "1 ", "01", "12"))
    return [(k, v if k == t else x) for k, x in f], t


def _format(rng, f):
    t = rng.choice([t for t, _ in f if t in (38, 44, 151, 14, 32, 31, 60)])
    v = rng.choice(("abc", "1.2.3", "1e5", "0x10", "1,5", "--1", "20240101-25:00:00"))
    if t == 60:
        v = rng.choice(("2024-01-01", "20240101-25:00:00", "x"))
    return [(k, v if k == t else x) for k, x in f], t


def _exec_id(rng, f):
    v = rng.choice(("E\x021", "\x7f", "A\x1fB", "\x00"))
    return [(k, v if k == 17 else x) for k, x in f], 17


def _symbol(rng, f):
    return [(k, rng.choice(("ETHUSDT", "btcusdt", "BTCUSDT ")) if k == 55 else v) for k, v in f], 55


def _trade_no_last(rng, f):
    f = [(k, "F" if k == 150 else ("1" if k == 39 else v)) for k, v in f if k not in (32, 31)]
    t = rng.choice((32, 31))
    f += [(32, "1.000"), (31, "100.00")]
    return [x for x in f if x[0] != t], t


SEMANTIC = (
    ("duplicate_tag", codec.DUPLICATE_TAG, _dup),
    ("empty_value", codec.EMPTY_VALUE, _empty),
    ("missing_tag", codec.MISSING_FIELD, _missing),
    ("negative_value", codec.VALUE_INCORRECT, _negative),
    ("order_qty_not_positive", codec.VALUE_INCORRECT, _order_qty),
    ("bad_enum", codec.VALUE_INCORRECT, _enum),
    ("bad_format", codec.BAD_VALUE, _format),
    ("bad_exec_id", codec.BAD_VALUE, _exec_id),
    ("unknown_symbol", codec.UNKNOWN_SYMBOL, _symbol),
    ("trade_without_last", codec.COND_MISSING, _trade_no_last),
)


def _break_bytes(rng: random.Random, m: bytes) -> tuple[str, bytes]:
    op = rng.choice(("body_length", "checksum", "flip", "insert", "delete", "truncate", "stray_start",
                     "garbage", "repeat"))
    i = m.index(b"\x019=") + 3
    j = m.index(b"\x01", i)
    if op == "body_length":
        n = int(m[i:j])
        v = rng.choice((n + rng.randint(1, 400), max(0, n - rng.randint(1, 60)), 0, 10**rng.randint(3, 8),
                        rng.randint(0, 10**6)))
        s = rng.choice((str(v), str(v), "", "x" + str(v), str(v) + "x", "-" + str(v), " " + str(v)))
        return op, m[:i] + s.encode() + m[j:]
    if op == "checksum":
        c = int(m[-4:-1])
        return op, m[:-4] + rng.choice((b"%03d" % ((c + rng.randint(1, 255)) % 256), b"12", b"abc", b"1234")) + b"\x01"
    if op == "flip":
        b = bytearray(m)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return op, bytes(b)
    if op == "insert":
        k = rng.randrange(len(m) + 1)
        ins = rng.choice((b"\x01", b"8=FIX.4.4\x01", b"10=000\x01", b"9=", b"=", bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))))
        return op, m[:k] + ins + m[k:]
    if op == "delete":
        k = rng.randrange(len(m))
        return op, m[:k] + m[k + rng.randint(1, 30):]
    if op == "truncate":
        return op, m[:rng.randrange(len(m))]
    if op == "stray_start":  # a message start that never completes, in front of M
        return op, b"8=FIX.4.4\x019=" + str(rng.randint(50, 5000)).encode() + b"\x0135=8\x01" + m
    if op == "garbage":
        return op, bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))) + m[rng.randrange(len(m)):]
    k = rng.randrange(len(m))  # repeat a chunk of M inside M
    return op, m[:k] + m[rng.randrange(len(m)):] + m[k:]


class Fuzzer:
    """Runs cases and keeps the counts. One instance per seed."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.enc = codec.Encoder("FIX.4.4", "EXCHANGE", "LIVESTACK")
        self.dec = codec.ExecDecoder()
        self.dec.add_instrument(SYMBOL, 1, 2, 3)
        self.out = np.zeros(1, DTYPES["EXEC"])
        self.seq = 0
        self.c = collections.Counter()
        self.failures: list[str] = []

    def _msg(self, fields) -> bytes:
        self.seq += 1
        return self.enc.encode(b"8", self.seq, T0 + self.seq, fields)

    def _fail(self, what: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(what)

    def _frames(self, stream: bytes) -> list[bytes]:
        fr = codec.Framer()
        oks = []
        pos = 0
        while pos < len(stream):
            k = self.rng.choice((1, 3, 17, 64, 256, 4096, len(stream)))
            fr.feed(stream[pos:pos + k])
            pos += k
            for status, data in fr:
                if status == codec.OK:
                    oks.append(data)
                else:
                    self.c["framer." + codec.STATUS_NAMES[status]] += 1
        self.c["framer.ok"] += len(oks)
        return oks

    def _judge(self, raw: bytes) -> tuple[int, int]:
        """Verdict of the inbound path on one framed message: the session checks, then the decoder."""
        try:
            msg = codec.parse_message(raw)
        except codec.FixParseError:
            self.c["parse.garbled"] += 1
            return codec.BAD_VALUE, 0
        v = msg.violation()
        rc, tag = self.dec.decode(raw, self.out, 0)
        if v is not None:  # the session rejects before the adapter; the decoder must agree
            self.c["session.violation"] += 1
            want = codec.EMPTY_VALUE if v[0] == 4 else codec.DUPLICATE_TAG
            if rc != want:
                self._fail(f"session says {v}, decoder says {(rc, tag)} for {raw!r}")
            return want, v[1]
        return rc, tag

    def case(self) -> None:
        rng = self.rng
        before, after1, after2 = (self._msg(valid_er(rng)) for _ in range(3))
        kind = rng.choices(("valid", "semantic", "bytes"), (1, 2, 4))[0]
        self.c["cases"] += 1
        self.c["cases." + kind] += 1
        expect = None
        fields = valid_er(rng)
        if kind == "semantic":
            name, code, plant = rng.choice(SEMANTIC)
            fields, tag = plant(rng, fields)
            expect = (name, code, tag)
        m = self._msg(fields)
        if kind == "bytes":
            op, m = _break_bytes(rng, m)
            self.c["bytes." + op] += 1
        stream = before + m + after1 + after2
        try:
            frames = self._frames(stream)
        except Exception as e:  # noqa: BLE001 - counting crashes is the point
            self._fail(f"crash in Framer: {e!r}")
            self.c["crashes"] += 1
            return
        # the valid neighbours come out whole, in order
        it = iter(frames)
        for want in (before, after1, after2):
            if not any(f == want for f in it):
                self._fail(f"lost a valid message ({kind}) in {stream!r}")
                self.c["lost"] += 1
                return
        if kind == "bytes" and m not in frames:
            self.c["recovered"] += 1  # M dropped, what followed it kept
        for raw in frames:
            try:
                rc, tag = self._judge(raw)
            except Exception as e:  # noqa: BLE001
                self._fail(f"crash judging {raw!r}: {e!r}")
                self.c["crashes"] += 1
                continue
            if raw == m:
                self._verdict(kind, expect, rc, tag, fields, raw)
            elif rc not in (codec.DECODED, codec.SKIPPED):
                if raw in (before, after1, after2):
                    self._fail(f"valid neighbour refused {(rc, tag)}: {raw!r}")
                    self.c["wrong_verdict"] += 1

    def _verdict(self, kind, expect, rc, tag, fields, raw) -> None:
        if rc in (codec.DECODED, codec.SKIPPED):
            self.c["decoder.accepted"] += 1
        else:
            self.c["decoder.rejected." + codec.REJECTS.get(rc, ("", 0, "other"))[2]] += 1
        if kind == "valid":
            if rc not in (codec.DECODED, codec.SKIPPED):
                self._fail(f"valid message refused {(rc, tag)}: {raw!r}")
                self.c["wrong_verdict"] += 1
                return
            if rc == codec.DECODED:
                ex = codec.parse_message(raw).get(17)  # the exact bytes on the wire
                got = (int(self.out[0]["exec_id"]), int(self.out[0]["exec_id_hi"]))
                if got != execid.exec_id_words(ex):
                    self._fail(f"exec id words differ for {ex!r}")
                    self.c["wrong_verdict"] += 1
        elif kind == "semantic":
            name, code, tag_want = expect
            if (rc, tag) != (code, tag_want):
                self._fail(f"{name}: want {(code, tag_want)}, got {(rc, tag)}: {raw!r}")
                self.c["wrong_verdict"] += 1

    def run(self, n: int) -> collections.Counter:
        for _ in range(n):
            self.case()
        for k in ("lost", "wrong_verdict", "crashes", "recovered"):
            self.c.setdefault(k, 0)
        return self.c


def run(n: int, seed: int = 1) -> tuple[collections.Counter, list[str]]:
    """``n`` seeded cases: ``(counts, first failures)``."""
    f = Fuzzer(seed)
    f.run(n)
    return f.c, f.failures
