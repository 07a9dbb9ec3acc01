"""The core's top N equals Binance's book at every message of both shared captures, at depths 1,
5, 32 and 1000, with gaps and resyncs injected (reference: tests/realdata/book_reference.py, a
plain-Python model of Binance's documented local-book procedure over the raw JSON)."""

from __future__ import annotations

import pytest

from livestack.config import BTCUSDT_SPOT, BTCUSDT_USDM

from tests.realdata.book_reference import check_capture

CAPTURES = [("spot", "spot-btcusdt-20240808.gz", BTCUSDT_SPOT, None),
            # USD-M has 2.3x the messages: depth 1000 at every 3rd line here (bench/bench_book.py
            # compares every line at every depth)
            ("usdm", "usdm-btcusdt-20240808.gz", BTCUSDT_USDM, {1000: 3})]


@pytest.mark.parametrize("market,name,inst,sample", CAPTURES, ids=[c[0] for c in CAPTURES])
def test_top_of_book_equals_the_reference_at_every_message(datadir, market, name, inst, sample):
    path = datadir / "binance" / name
    if not path.exists():
        pytest.skip(f"{path} missing")
    r = check_capture(path, inst, market, (1, 5, 32, 1000), gaps=True, sample_every=sample)
    assert r["gaps_injected"] == 2 and r["model_gaps"] == 2 and r["model_syncs"] == 3, r
    assert r["health_mismatches"] == 0, r
    assert r["mismatches"] == {1: 0, 5: 0, 32: 0, 1000: 0}, r
    # the BOOK_TOP records (N = 5): one row per line that changed the top 5, equal to the model's
    assert r["book_top_rows"] > 1000 and r["book_top_mismatches"] == 0 and r["book_top_missing"] == 0, r
    # the comparison really ran over (nearly) the whole capture at every depth
    for d, n in r["compared"].items():
        assert n >= 0.9 * r["lines"] / (sample or {}).get(d, 1), (d, r)
