"""``records summary`` says where the file ends against where the harness ended (issue 12.7)."""

from __future__ import annotations

import io
import os
from types import SimpleNamespace

import numpy as np

from livestack.records.cli import _cmd_summary, print_summary, summarize
from livestack.records.writer import RecordWriter
from livestack.schema import SLOT128, RecordFlag, RecordKind


def _session(path, n, end=None, close=True):
    w = RecordWriter(path, {"session": "t"}, {"quiet": True})
    a = np.zeros(n, dtype=SLOT128)
    a["seq"] = np.arange(1, n + 1)
    a["kind"] = RecordKind.TIMER
    a["flags"] = RecordFlag.JOURNAL
    w.write(a)
    w.flush()
    if close:
        w.close(end=end)
    else:
        w.abandon()


def _text(d):
    out = io.StringIO()
    print_summary(d, out)
    return out.getvalue()


def test_a_file_short_of_the_harness_last_seq_reports_a_missing_tail_not_contiguous(tmp_path):
    path = str(tmp_path / "s.h5")
    _session(path, 100, end={"harness_last_seq": 120, "records_produced": 120})
    d = summarize(path)
    assert d["seq"]["contiguous"] and d["end"]["missing_tail"] == 20
    text = _text(d)
    assert "MISSING TAIL" in text and "20 records missing" in text and "nothing lost" not in text
    assert _cmd_summary(SimpleNamespace(file=path, json=True)) == 1


def test_a_file_that_ends_where_the_harness_ended_says_so(tmp_path):
    path = str(tmp_path / "s.h5")
    _session(path, 100, end={"harness_last_seq": 100, "records_produced": 100})
    d = summarize(path)
    assert d["end"]["missing_tail"] == 0 and "where the harness ended" in _text(d)
    assert _cmd_summary(SimpleNamespace(file=path, json=True)) == 0


def test_a_file_the_writer_never_closed_says_the_tail_is_unknown(tmp_path):
    path = str(tmp_path / "s.h5")
    _session(path, 10, close=False)
    d = summarize(path)
    assert not d["end"]["known"] and "whether a tail is missing is unknown" in _text(d)


def test_a_disk_full_file_says_where_it_ends(tmp_path):
    path = str(tmp_path / "s.h5")
    _session(path, 50, end={"end_reason": "disk_full", "records_produced": 70})
    text = _text(summarize(path))
    assert "THE RECORDS DISK FILLED" in text and "seq 50" in text and os.path.exists(path)
