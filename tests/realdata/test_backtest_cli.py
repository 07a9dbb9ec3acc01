"""``livestack backtest`` end to end on the real USD-M capture: the summary is printed and sane."""

from __future__ import annotations

import json

import pytest

from livestack.cli import main

pytestmark = pytest.mark.realdata


def test_backtest_cli_prints_a_summary(datadir, capsys, tmp_path):
    pytest.importorskip("livestack.feeds.capture")
    cfg = tmp_path / "bt.toml"
    cfg.write_text('[risk]\nmax_order_qty = "0.05"\nmax_position = "0.2"\n[strategy.params]\nquote_qty = 20\n')
    data = datadir / "binance" / "usdm-btcusdt-20240808.gz"
    assert main(["backtest", "--data", str(data), "--strategy", "mm_cy", "--config", str(cfg), "--json", "--no-records"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["md_events"] > 500_000 and s["events"] == s["md_events"] + s["exec_events"]
    assert s["orders"] > 0 and s["fills"] > 0 and s["anomalies"] == 0 and s["events_per_s"] > 0
    assert abs(s["position"]) <= 0.2
    assert main(["backtest", "--data", str(data), "--strategy", "taker_numba", "--no-records"]) == 0
    out = capsys.readouterr().out
    for word in ("events", "orders", "fills", "PnL", "events/s"):
        assert word in out
