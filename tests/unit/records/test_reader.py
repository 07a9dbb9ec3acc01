"""open_session decoding (enum names, human prices) and ``livestack records summary``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livestack.cli import main as cli_main
from livestack.records import open_session
from livestack.records.writer import RecordWriter
from livestack.schema import (
    SLOT128, Anomaly, ControlCmdType, ControlStatus, DenyReason, ExecType, OrdType, OrderCmdType, OrderState,
    RecordFlag, Side, TimeInForce, TradingState, new, spec,
)

INSTRUMENTS = [{"id": 1, "symbol": "BTCUSDT", "price_decimals": 2, "qty_decimals": 5},
               {"id": 2, "symbol": "ETHUSDT", "price_decimals": 3, "qty_decimals": 1}]


def slot(name, seq, journal=False, instrument=1, **fields):
    r = new(name, 1, instrument=instrument, seq=seq, ts=1_700_000_000_000_000_000 + seq, **fields)
    if journal:
        r["flags"] |= int(RecordFlag.JOURNAL)
    out = np.zeros(1, SLOT128)
    out.view(np.uint8)[:r.dtype.itemsize] = r.view(np.uint8)
    return out


@pytest.fixture
def path(tmp_path):
    p = str(tmp_path / "s.h5")
    recs = [
        slot("MD_LEVEL", 1, True, price=6183763, qty=150000, side=Side.BUY),
        slot("EXEC", 2, True, exec_type=ExecType.FILLED, side=Side.BUY, last_px=6183763, last_qty=50000, client_order_id=7),
        slot("ORDER_CMD", 3, cmd=OrderCmdType.NEW, side=Side.SELL, price=6183800, qty=100000, tif=TimeInForce.POST_ONLY,
             ord_type=OrdType.LIMIT),
        slot("ORDER_STATE", 4, state=OrderState.FILLED, prev_state=OrderState.ACCEPTED, side=Side.BUY, price=6183763,
             qty=50000, exec_type=ExecType.FILLED),
        slot("FILL", 5, side=Side.BUY, price=6183763, qty=50000, position=50000, realized_pnl=0, client_order_id=7),
        slot("POSITION", 6, net_qty=50000, cost=6183763 * 50000, realized_pnl=0, unrealized_pnl=1250 * 10**7),
        slot("FILL", 7, instrument=2, side=Side.SELL, price=2000123, qty=30, position=-30, realized_pnl=-12345 * 10),
        slot("DENIAL", 8, reason=DenyReason.MAX_POSITION, side=Side.BUY, intent=1, price=6183700, qty=100000, count=1),
        slot("DENIAL", 9, reason=DenyReason.MAX_POSITION, side=Side.BUY, intent=1, count=4),  # a run's 4 repeats
        slot("DENIAL", 10, reason=DenyReason.HALTED, side=Side.SELL, intent=1, count=1),
        slot("ANOMALY", 11, code=Anomaly.DUPLICATE_EXEC, state=OrderState.FILLED, exec_type=ExecType.FILLED),
        slot("TRADING_STATE", 12, instrument=0, state=TradingState.HALTED, prev_state=TradingState.ACTIVE, kill_latched=1, cause=1),
        slot("CONTROL_CMD", 13, True, instrument=0, cmd=ControlCmdType.KILL, request_id=99),
        slot("CONTROL_REPLY", 14, instrument=0, cmd=ControlCmdType.KILL, status=ControlStatus.OK, request_id=99, hseq=3),
        slot("MD_LEVEL", 15, True, instrument=9, price=123, qty=4, side=Side.SELL),
    ]
    with RecordWriter(p, {"session": "r1", "instruments": INSTRUMENTS}, {"quiet": True}) as w:
        w.write(np.concatenate(recs))
    return p


def test_open_session_decodes_enums_and_human_prices(path):
    with open_session(path) as s:
        fill = s["fill"]
        assert fill.symbol.tolist() == ["BTCUSDT", "ETHUSDT"]
        assert fill.side.tolist() == ["BUY", "SELL"]
        assert fill.kind.tolist() == ["FILL", "FILL"]
        assert fill.price.tolist() == [61837.63, 2000.123]
        assert fill.qty.tolist() == [0.5, 3.0]
        assert fill.realized_pnl.tolist()[1] == pytest.approx(-123450 / 10**4)
        assert str(fill.time.dtype).startswith("datetime64[ns")
        assert not any(c.startswith("_") for c in fill.columns)
        os_ = s["order_state"].iloc[0]
        assert (os_.state, os_.prev_state, os_.exec_type) == ("FILLED", "ACCEPTED", "FILLED")
        cmd = s["order_cmd"].iloc[0]
        assert (cmd.cmd, cmd.side, cmd.tif, cmd.ord_type, cmd.price) == ("NEW", "SELL", "POST_ONLY", "LIMIT", 61838.0)
        assert s["denial"].reason.tolist() == ["MAX_POSITION", "MAX_POSITION", "HALTED"]
        assert s["anomaly"].code.tolist() == ["DUPLICATE_EXEC"]
        ts = s["trading_state"].iloc[0]
        assert (ts.state, ts.prev_state, bool(ts.kill_latched), ts.symbol) == ("HALTED", "ACTIVE", True, "")
        pos = s["position"].iloc[0]
        assert pos.unrealized_pnl == pytest.approx(1250.0)
        assert s["control_reply"].status.tolist() == ["OK"]


def test_journal_is_decoded_by_kind(path):
    with open_session(path) as s:
        j = s["journal"]
        assert j.kind.tolist() == ["MD_LEVEL", "EXEC", "CONTROL_CMD", "MD_LEVEL"]
        assert set(j["flags"]) == {"JOURNAL"}  # (DataFrame.flags is pandas own)
        assert {"journal_md_level", "journal_exec", "journal_control_cmd"} <= set(s.keys())
        ex = s["journal_exec"].iloc[0]
        assert (ex.exec_type, ex.side, ex.last_px, ex.last_qty) == ("FILLED", "BUY", 61837.63, 0.5)
        md = s["journal_md_level"]
        assert md.price.tolist() == [61837.63, 123.0]  # instrument 9 is unknown: raw units
        assert md.symbol.tolist() == ["BTCUSDT", "#9"]
        assert s["journal_control_cmd"].cmd.tolist() == ["KILL"]
        assert s.counts()["journal_md_level"] == 2
        # each input is stored once, in its kind's dataset; the journal is the index
        assert j.hseq.tolist() == [1, 2, 3, 4] and j.seq.tolist() == [1, 2, 13, 15] and j.row.tolist() == [0, 0, 0, 1]
        assert s.counts()["md_level"] == 2 and s.counts()["exec"] == 1 and s.counts()["control_cmd"] == 1
        assert s["md_level"].price.tolist() == [61837.63, 123.0]


def test_every_enum_field_of_every_dataset_decodes_to_a_name(tmp_path):
    """A zero in an enum that has no 0 member (ORDER_STATE.exec_type of a dispatch) reads NONE, not ?0."""
    p = str(tmp_path / "z.h5")
    with RecordWriter(p, {"session": "z"}, {"quiet": True}) as w:
        w.write(np.concatenate([slot(r.name, i + 1, journal=r.name in ("MD_LEVEL", "EXEC", "TIMER"))
                                for i, r in enumerate(spec.RECORDS)]))
    with open_session(p) as s:
        for name in s.keys():
            df = s[name]
            if name == "book_top" or not len(df):
                continue
            for col in df.columns:
                if df[col].dtype == object:
                    bad = [v for v in df[col] if isinstance(v, str) and v.startswith("?")]
                    assert not bad, (name, col, bad)
        assert s["order_state"].exec_type.tolist() == ["NONE"]


def test_open_session_reads_attributes_and_instruments(path):
    with open_session(path) as s:
        assert s.attrs["session"] == "r1"
        assert s.instruments[2]["symbol"] == "ETHUSDT"
        assert s.seq_report() == {"records": 15, "first": 1, "last": 15, "missing": 0, "duplicates": 0,
                                  "contiguous": True}


def test_seq_report_names_missing_and_duplicated_records(tmp_path):
    p = str(tmp_path / "h.h5")
    with RecordWriter(p, {}, {"quiet": True}) as w:
        w.write(np.concatenate([slot("FILL", s) for s in (1, 2, 5)]))
    with open_session(p) as s:
        rep = s.seq_report()
        assert rep["missing"] == 2 and not rep["contiguous"]


def test_seq_report_streams_in_slices_with_the_same_answer(path):
    with open_session(path) as s:
        assert s.seq_report(rows=1) == s.seq_report(rows=3) == s.seq_report()


def test_seq_report_counts_duplicates_across_datasets_and_rows_outside_the_span(tmp_path):
    import h5py

    p = str(tmp_path / "damaged.h5")
    with RecordWriter(p, {}, {"quiet": True}) as w:
        w.write(np.concatenate([slot("FILL", s) for s in range(1, 11)] +
                               [slot("DENIAL", s, reason=6) for s in range(11, 21)]))
    with h5py.File(p, "r+") as f:  # damage it: a denial carrying a fill's seq, a fill out of order
        d = f["denial"]
        row = d[3:4]
        row["seq"] = 4
        d[3:4] = row
        fl = f["fill"]
        row = fl[0:1]
        row["seq"] = 99
        fl[0:1] = row
    with open_session(p, swmr=False) as s:
        for rows in (1, 4, 1 << 20):
            rep = s.seq_report(rows=rows)
            # present: 99 and 2..10 (fills), 11..13, 4 again, 15..20 (denials): 19 distinct seqs
            # over 2..99, 4 duplicated; 14 and 21..98 missing
            assert rep["records"] == 20 and rep["duplicates"] == 1, rep
            assert (rep["first"], rep["last"]) == (2, 99), rep
            assert rep["missing"] == (99 - 2 + 1) - 19 and not rep["contiguous"], rep


def test_summary_in_slices_of_one_row_equals_the_whole_file_summary(path):
    from livestack.records.cli import summarize

    whole = summarize(path)
    sliced = summarize(path, rows=1)
    assert sliced == whole
    assert whole["denials"] == {"MAX_POSITION": 5, "HALTED": 1}
    assert whole["anomalies"] == {"DUPLICATE_EXEC": 1}
    assert whole["trading_state"] == {"transitions": 1, "final": "HALTED", "kill_latched": True}


def test_records_summary_prints_counts_fills_pnl_denials(path, capsys):
    assert cli_main(["records", "summary", path]) == 0
    out = capsys.readouterr().out
    for want in ("session r1", "contiguous, nothing lost", "fill", "BTCUSDT", "ETHUSDT", "MAX_POSITION",
                 "HALTED", "DUPLICATE_EXEC", "PnL per instrument", "final HALTED (kill latched)", "journal_exec"):
        assert want in out, want
    assert cli_main(["records", "summary", "--json", path]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["counts"]["fill"] == 2 and d["counts"]["journal"] == 4
    assert d["denials"] == {"MAX_POSITION": 5, "HALTED": 1}
    assert d["fills"]["BTCUSDT"]["buy_qty"] == 0.5 and d["fills"]["ETHUSDT"]["sell_qty"] == 3.0
    assert d["pnl"]["BTCUSDT"]["unrealized_pnl"] == pytest.approx(1250.0)
    assert d["seq"]["contiguous"] is True


def test_open_session_reads_a_file_a_writer_still_has_open(tmp_path):
    p = str(tmp_path / "live.h5")
    w = RecordWriter(p, {"instruments": INSTRUMENTS}, {"quiet": True})
    w.write(np.concatenate([slot("FILL", 1, side=Side.BUY, price=100, qty=100000)]))
    w.flush()
    try:
        # (same process: HDF5 shares the open file; another process sees the same through SWMR)
        import h5py

        w.file.close()  # what a reader in another process meets: flags set by a live writer
        with open(p, "r+b") as fh:  # put the flags back as a live (or crashed) SWMR writer leaves them
            from livestack.records import h5util

            raw = bytearray(fh.read(48))
            length = 12 + 4 * raw[9]
            raw[11] = 0x05
            raw[length:length + 4] = h5util.lookup3(bytes(raw[:length])).to_bytes(4, "little")
            fh.seek(0)
            fh.write(bytes(raw))
        with pytest.raises(OSError):
            h5py.File(p, "r")
        for swmr in (True, False):
            with open_session(p, swmr=swmr) as s:
                assert s["fill"].qty.tolist() == [1.0]
    finally:
        w._unlock(remove=True)


def test_the_journal_frame_streams_and_tails_like_any_dataset(path):
    with open_session(path) as s:
        whole = s["journal"]
        assert list(s.tail("journal", 2).kind) == list(whole.kind[-2:])
        assert sum(len(f) for f in s.iter_frames("journal")) == len(whole) == 4
