"""The writer inside a real session (``Supervisor``: harness, simulated venue, control, writer as
spawned processes), then the file read back, summarized and replayed.

The writer is SIGKILLed once mid-session and restarted by the supervisor.

Allowed outcome: the file's record seq is contiguous from 1 (nothing lost, nothing twice); every fill of the session appears
once; ``replay --verify`` finds the journal reproduces every dispatch and record bit for bit; after
one journaled execution report is altered, ``replay --verify`` fails and names the input.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import time

import h5py
import numpy as np
import pytest

from livestack.cli import main as cli_main
from livestack.records import open_session
from livestack.schema import ExecType, RecordKind

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    pytest.importorskip("livestack.harness.process")
    from livestack.node import config as cfgmod
    from livestack.node.supervisor import Supervisor

    d = tmp_path_factory.mktemp("recs")
    cfg = cfgmod.validate({"session": {"duration_s": 0.0, "records_dir": str(d), "status_interval_s": 0.0},
                           "control": {"enabled": False}})
    sup = Supervisor(cfg, out=io.StringIO())
    try:
        sup.start()
        t0 = time.monotonic()
        killed = False
        while time.monotonic() - t0 < 9.0 or sup.procs["writer"].restarts < 1:
            assert time.monotonic() - t0 < 60, f"the writer was not killed and restarted: {sup.events}"
            assert sup.poll(), "harness died"
            # kill once the writer has flushed and released records (a file with data exists)
            if not killed and time.monotonic() - t0 > 4.0 and sup.status()["records_written"] > 0:
                os.kill(sup.procs["writer"].proc.pid, signal.SIGKILL)  # the supervisor restarts it
                killed = True
            time.sleep(0.05)
        assert sup.procs["writer"].restarts == 1, sup.events
    finally:
        sup.stop()
    return sup.records_path


def test_a_live_session_file_is_contiguous_and_decodes(session_file):
    with open_session(session_file) as s:
        rep = s.seq_report()
        assert rep["contiguous"], rep
        counts = s.counts()
        assert counts.get("journal_exec", 0) > 0, f"the simulated session produced no execution reports: {counts}"
        assert s.attrs["stop_time_ns"] > 0 and s.attrs["writer_starts"] == 2  # SIGKILLed once mid-session
        assert s.instruments and isinstance(s.attrs["config"], dict)
        # every fill the venue reported appears exactly once (one FILL record per venue exec id)
        ex = s["journal_exec"]
        venue_fills = ex[ex.exec_type.isin(["PARTIALLY_FILLED", "FILLED"])]
        assert venue_fills.exec_id.is_unique  # journaled once each
        fills = s["fill"]
        assert fills.exec_id.is_unique
        # the core applies a fill or, for an order it does not know, records an anomaly naming the
        # exec id instead (never both, never neither)
        anomalies = s["anomaly"] if counts.get("anomaly") else None
        flagged = set() if anomalies is None else set(anomalies[anomalies.code == "UNKNOWN_ORDER"].detail)
        assert set(fills.exec_id) | flagged == set(venue_fills.exec_id)
        assert not set(fills.exec_id) & flagged


def test_records_summary_of_a_live_session(session_file, capsys):
    import math

    from livestack.records.cli import summarize

    d = summarize(session_file)
    numbers = [v for part in ("fills", "pnl") for inst in d[part].values() for v in inst.values()]
    assert all(math.isfinite(v) for v in numbers), d
    assert cli_main(["records", "summary", session_file]) == 0
    out = capsys.readouterr().out
    assert "contiguous, nothing lost" in out and "journal_md_" in out


def test_replay_verify_passes_on_the_recorded_session(session_file, capsys):
    assert cli_main(["replay", "--verify", session_file]) == 0
    assert "bit-identical" in capsys.readouterr().out


def test_replay_verify_reports_the_divergence_when_the_journal_is_altered(session_file, tmp_path, capsys):
    alt = str(tmp_path / "altered.h5")
    shutil.copy(session_file, alt)
    with h5py.File(alt, "r+") as f:
        exd = f["exec"]  # the consumed execution events are stored once, here (/journal indexes them)
        ex = exd[()]
        fills = np.flatnonzero(np.isin(ex["exec_type"], [ExecType.PARTIALLY_FILLED, ExecType.FILLED]))
        assert len(fills), "no fill in the session to alter"
        i = int(fills[0])
        row = ex[i:i + 1].copy()
        row["last_qty"] += 1
        exd[i] = row[0]
        altered_seq = int(row["seq"][0])
    assert cli_main(["replay", "--verify", alt]) == 1
    out = capsys.readouterr().out
    assert "DIVERGED" in out
    assert f"journal seq {altered_seq:,}, EXEC" in out
