"""Replay's comparison rules (seq ignored, only a record's own bytes count) and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from livestack.cli import main as cli_main
from livestack.records import replay as rp
from livestack.records.writer import RecordWriter
from livestack.schema import DTYPES, SLOT128, RecordFlag, new


def _slots(*names):
    out = np.zeros(len(names), SLOT128)
    for i, n in enumerate(names):
        r = new(n, 1, instrument=1, seq=i + 1, ts=5)
        out[i:i + 1].view(np.uint8)[:r.dtype.itemsize] = r.view(np.uint8)
    return out


def test_mismatch_ignores_the_header_seq_and_bytes_past_the_record_size():
    a = _slots("FILL", "DENIAL")
    b = a.copy()
    b["seq"] += 100
    b.view(np.uint8).reshape(2, 128)[1, 64:] = 7  # DENIAL is 64 bytes: the rest of the slot is not part of it
    sizes = rp._SIZE_BY_KIND[a["kind"]]
    assert rp._first_mismatch(a, b, sizes) is None
    b["ts"][1] = 6
    assert rp._first_mismatch(a, b, sizes) == 1


def test_mismatch_reports_a_shorter_stream_at_its_end():
    a = _slots("FILL", "FILL", "FILL")
    assert rp._first_mismatch(a, a[:2], rp._SIZE_BY_KIND[a["kind"]]) == 2


def test_describe_names_the_fields_that_differ_or_both_records_when_kinds_differ():
    a = _slots("FILL", "ANOMALY")
    b = a.copy()
    off = DTYPES["FILL"].fields["qty"][1]
    b.view(np.uint8).reshape(2, 128)[0, off:off + 8] = np.array([9], np.int64).view(np.uint8)
    d = rp._describe(a[0], b[0], 11, 11)
    assert d["fields"] == {"qty": {"recorded": 0, "replayed": 9}}
    d = rp._describe(a[0], a[1], 11, 16)
    assert d["kind"] == "FILL" and d["replayed_kind"] == "ANOMALY" and d["recorded"]["qty"] == 0


def test_replay_refuses_a_file_without_a_session_config(tmp_path, capsys):
    p = str(tmp_path / "x.h5")
    s = _slots("TIMER")
    s["flags"] = int(RecordFlag.JOURNAL)
    with RecordWriter(p, {"session": "x"}, {"quiet": True}) as w:
        w.write(s)
    with pytest.raises(rp.ReplayError, match="no session config"):
        rp.replay(p)
    assert cli_main(["replay", "--verify", p]) == 2
    assert "no session config" in capsys.readouterr().err
