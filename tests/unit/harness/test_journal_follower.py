"""JournalFollower (issue 14, warm standby): a core fed the journal a pass at a time, while the
writer still writes, sees exactly the inputs a replay gives it, each once, with hseq k + 1."""

from __future__ import annotations

import numpy as np

from livestack.harness.recovery import JournalFollower
from livestack.records.replay import consumed_inputs
from livestack.records.writer import RecordWriter
from livestack.schema import SLOT128, ControlCmdType, RecordFlag, new

ATTRS = {"session": "unit-follow", "config": {"x": 1}, "cpu": {"harness": 1, "writer": 0},
         "instruments": [{"id": 1, "symbol": "AAA", "price_decimals": 2, "qty_decimals": 3}]}


class RecordingCore:
    """Stands in for the Core: keeps what ``run_count`` was given."""

    def __init__(self):
        self.calls = []

    def run_count(self, inputs, hseq0):
        self.calls.append((inputs.copy(), int(hseq0)))
        return 0, 0


def records(first_seq: int, n: int) -> np.ndarray:
    """Inputs (journaled: md, timers, a RECOVER) with an output between them, as on the records ring."""
    out = []
    for i in range(n):
        seq = first_seq + i
        if i % 4 == 3:
            r = new("FILL", 1, instrument=1, seq=seq, ts=seq)                      # an output
        elif i % 7 == 5:
            r = new("CONTROL_CMD", 1, seq=seq, ts=seq, cmd=int(ControlCmdType.RECOVER), arg0=1)
            r["flags"] |= int(RecordFlag.JOURNAL)
        else:
            r = new("MD_LEVEL" if i % 2 else "TIMER", 1, instrument=1, seq=seq, ts=seq)
            r["flags"] |= int(RecordFlag.JOURNAL)
        s = np.zeros(1, SLOT128)
        s.view(np.uint8)[:r.dtype.itemsize] = r.view(np.uint8)
        out.append(s)
    return np.concatenate(out)


def test_passes_while_the_writer_writes_give_the_core_the_whole_journal_once_in_hseq_order(tmp_path):
    # (the writer is another process in a session; here it closes and reopens the file between
    # passes, as a restarted writer does: one process cannot hold an HDF5 file open twice)
    path = str(tmp_path / "s.h5")
    core = RecordingCore()
    f = JournalFollower(core, path, batch=5)
    seq = 1
    for n in (0, 13, 1, 40):
        with RecordWriter(path, ATTRS, {"quiet": True}) as w:
            if n:
                w.write(records(seq, n))
                seq += n
        assert f.catch_up() is True
    assert f.catch_up() is True  # nothing new: nothing run twice
    (want,) = list(consumed_inputs(path))
    got = np.concatenate([c[0] for c in core.calls])
    assert got.tobytes() == want.tobytes()
    assert [h for _, h in core.calls] == list(np.cumsum([0] + [len(c[0]) for c in core.calls[:-1]]) + 1)
    assert f.applied == len(want) and f.last.tobytes() == want[-1:].tobytes()
    assert f.recovers == int(np.count_nonzero(want["kind"] == new("CONTROL_CMD", 1)["kind"][0]))
    assert f.recovers > 0


def test_a_pass_on_a_missing_file_or_interrupted_runs_nothing(tmp_path):
    core = RecordingCore()
    f = JournalFollower(core, str(tmp_path / "none.h5"))
    assert f.catch_up() is False and f.applied == 0 and f.errors == 1
    path = str(tmp_path / "s.h5")
    with RecordWriter(path, ATTRS, {"quiet": True}) as w:
        w.write(records(1, 30))
    f = JournalFollower(core, path, batch=4)
    assert f.catch_up(interrupted=lambda: True) is False and f.applied == 0 and core.calls == []
    assert f.catch_up() is True and f.applied == sum(len(c[0]) for c in core.calls) > 0
