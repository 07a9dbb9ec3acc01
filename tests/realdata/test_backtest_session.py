"""``livestack backtest`` on the shared captures with no config: the per-market defaults trade, and the
session file it writes is a live run's (summary contiguous, replay --verify bit-identical, export, report)."""

from __future__ import annotations

import json

import pytest

from livestack.cli import main

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_default_backtest_trades_on_the_shared_capture(datadir, capsys, market):
    pytest.importorskip("livestack.backtest.sim")
    data = datadir / "binance" / f"{market}-btcusdt-20240808.gz"
    for strategy in ("mm_cy", "taker_cy"):
        assert main(["backtest", "--data", str(data), "--strategy", strategy, "--no-records", "--json"]) == 0
        s = json.loads(capsys.readouterr().out)
        assert s["market"] == market
        assert s["orders"] > 0 and s["fills"] > 0, (strategy, s)
        assert "BAD_QTY" not in (s["denials_by_reason"] or {}), (strategy, s["denials_by_reason"])
        assert s["anomalies"] == 0


def test_backtest_session_file_replays_bit_identically_and_reports(datadir, tmp_path, capsys):
    from livestack.records.replay import replay

    data = datadir / "binance" / "spot-btcusdt-20240808.gz"
    assert main(["backtest", "--data", str(data), "--strategy", "mm_cy", "--records", str(tmp_path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    r = replay(s["records"], verify=True)
    assert r.verified, r.divergence
    assert r.inputs == s["events"] and r.orders == s["orders"]
    assert main(["records", "summary", s["records"]]) == 0
    assert "contiguous, nothing lost" in capsys.readouterr().out
    assert main(["records", "report", s["records"], "--html", str(tmp_path / "r.html")]) == 0
    assert f"fills {s['fills']:,}" in capsys.readouterr().out
    assert main(["records", "export", s["records"], "--parquet", str(tmp_path / "pq")]) == 0
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "pq" / "fills.parquet").num_rows == s["fills"]
    assert pq.read_table(tmp_path / "pq" / "journal.parquet").num_rows == s["events"]
