"""``livestack backtest`` says what its events/s timed, and ``--repeat N`` adds a warm median."""

from __future__ import annotations

import gzip
import json

import pytest

from livestack.cli import main


@pytest.mark.realdata
def test_repeat_reports_cold_pass_and_warm_median(datadir, tmp_path, capsys):
    src = datadir / "binance" / "usdm-btcusdt-20240808.gz"
    if not src.exists():
        pytest.skip(f"{src} not found")
    small = tmp_path / "head.gz"
    with gzip.open(src, "rt") as f, gzip.open(small, "wt") as g:
        for _, line in zip(range(3000), f):
            g.write(line)
    assert main(["backtest", "--data", str(small), "--strategy", "mm_cy", "--repeat", "3", "--json", "--no-records"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["repeat"] == 3 and len(s["wall_s_runs"]) == 3
    assert s["events"] > 0 and s["events_per_s_warm_median"] > 0
    assert "cold single pass" in s["timed"] and "decode" in s["timed"] and "not counted" in s["timed"]
    # one pass only: no warm figure, and the text says how to get one
    assert main(["backtest", "--data", str(small), "--strategy", "none", "--json", "--no-records"]) == 0
    s1 = json.loads(capsys.readouterr().out)
    assert s1["repeat"] == 1 and "events_per_s_warm_median" not in s1 and "--repeat N" in s1["timed"]
