"""``livestack backtest`` over OKX and Kraken captures (issue 16): the market and the instrument
(symbol, decimals) come from the capture, the checksummed book decoders feed the same core and
simulated matching engine as for Binance, and the session file replays bit-identically."""

from __future__ import annotations

import json

import pytest

from livestack.cli import main
from livestack.feeds.capture_formats import write_livestack
from livestack.testing.l2_venue import kraken_session, okx_session

pytest.importorskip("livestack.backtest.sim")


@pytest.mark.parametrize("venue, symbol", [("okx", "BTC-USDT"), ("kraken", "BTC/USD")])
def test_an_okx_or_kraken_capture_backtests_and_replays(tmp_path, capsys, venue, symbol):
    from livestack.records.replay import replay

    gen = okx_session if venue == "okx" else kraken_session
    cap = tmp_path / f"{venue}.gz"
    write_livestack(cap, [(10**18 + i * 10**6, m) for i, m in enumerate(gen(seed=3, n=1500))])
    rc = main(["backtest", "--data", str(cap), "--strategy", "mm_cy", "--records", str(tmp_path / "rec"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["market"] == venue and out["md_events"] > 1000 and out["orders"] > 0 and out["fills"] > 0
    r = replay(out["records"], verify=True)
    assert r.verified, r.divergence
    other = "kraken" if venue == "okx" else "okx"  # an explicit market the capture does not hold: a clear error
    assert main(["backtest", "--data", str(cap), "--market", other, "--no-records"]) != 0
    assert f"no {other} book or trade message" in capsys.readouterr().err


def test_a_binance_capture_is_not_taken_for_okx(tmp_path, capsys):
    cap = tmp_path / "x.gz"
    write_livestack(cap, [(10**18, b'{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":"1","q":"1"}}')])
    rc = main(["backtest", "--data", str(cap), "--market", "okx", "--no-records"])
    assert rc != 0
    assert "no okx book or trade message" in capsys.readouterr().err
